"""Notifications people receive: e-mail (SMTP) and group-chat robot webhooks (DingTalk, WeCom,
Feishu). `dispatch` (notifications/dispatch.py) renders and sends one notification to a list of
contacts; `notifications/settings.py` describes the environment settings."""
