"""disburse backend models: pydantic payloads (application), SQLModel tables, DB, registries."""
from models.application import *  # noqa: F401,F403
from models.application import __all__  # noqa: F401
