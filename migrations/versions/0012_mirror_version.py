"""application.version: 64-bit (the status mirror's version is the workflow task's time in ms x 1000
under the workflow patch "lean-history": workflows/application.py _mirror_version)

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28 13:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0012'
down_revision: Union[str, Sequence[str], None] = '0011'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('application') as batch:
        batch.alter_column('version', existing_type=sa.Integer(), type_=sa.BigInteger(),
                           existing_nullable=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('application') as batch:
        batch.alter_column('version', existing_type=sa.BigInteger(), type_=sa.Integer(),
                           existing_nullable=False)
