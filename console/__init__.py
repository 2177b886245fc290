"""The web console (server-rendered, no JavaScript build step): reviewers, operators and finance
log in and act; every request they make is signed for them by the console's signing service."""
