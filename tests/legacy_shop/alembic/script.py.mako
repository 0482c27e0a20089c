<%!
    def docstring(text):
        # the message goes inside a triple-quoted docstring: escape what could end it
        # (quotes, backslashes) and what cannot stand in source (control characters)
        out = []
        for char in str(text):
            if char == "\\" or char == '"':
                out.append("\\" + char)
            elif char in "\n\t" or char.isprintable():
                out.append(char)
            elif ord(char) < 0x10000:
                out.append("\\u%04x" % ord(char))
            else:
                out.append("\\U%08x" % ord(char))
        return "".join(out)
%>"""${message | docstring}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa
${imports if imports else ""}

# revision identifiers, used by Alembic.
revision: str = ${repr(up_revision)}
down_revision: str | Sequence[str] | None = ${repr(down_revision)}
branch_labels: str | Sequence[str] | None = ${repr(branch_labels)}
depends_on: str | Sequence[str] | None = ${repr(depends_on)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
