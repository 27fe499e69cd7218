"""failure reports: the report run's lease on a failed delivery log

Revision ID: 0002_reports
Revises: 0001
Create Date: 2026-11-29 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0002_reports'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('delivery_logs', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('report_claimed_until', sa.DateTime(timezone=True), nullable=True)
        )


def downgrade():
    with op.batch_alter_table('delivery_logs', schema=None) as batch_op:
        batch_op.drop_column('report_claimed_until')
