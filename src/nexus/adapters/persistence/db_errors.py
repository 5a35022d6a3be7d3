"""What a database error means, decided in one place (the way httpx maps transport errors).

Two answers matter to the callers:
- **unavailable**: the database cannot take or answer anything right now, whatever was sent:
  it is down, unreachable, timing out, restarting, read-only (a failover), out of space or
  connections, or refuses the statement itself (schema not migrated, privileges missing). Waiting
  and trying again is right; the recorder journals meanwhile.
- **rejected**: the database refused what was sent (a value it cannot store, a constraint), or
  something went wrong turning it into SQL. Trying the same again fails the same way; the
  recorder splits the batch and quarantines the row that fails alone.

PostgreSQL's SQLSTATE classes decide where the server answered; client-side failures count by
their kind (a broken connection is unavailable, an unencodable value rejected).
"""

from __future__ import annotations

import re

from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

# SQLSTATE classes in which no row is to blame: connection exception, invalid transaction state
# (read-only after a failover), invalid authorization, invalid catalog, transaction rollback
# (serialization failure, deadlock), syntax error or access rule violation (schema or
# privileges), insufficient resources, object not in prerequisite state (lock not available),
# operator intervention (shutdown, statement timeout), system error, configuration file error.
_UNAVAILABLE_CLASSES = frozenset({"08", "25", "28", "3D", "40", "42", "53", "55", "57", "58", "F0"})
UNDEFINED_TABLE = "42P01"
# asyncpg quotes the offending value in this message; it may be a prompt, so it is cut out.
_ARGUMENT_VALUE = re.compile(r"^(invalid input for query argument \$\d+): .* \(([^()]*)\)$", re.DOTALL)
_MAX_REASON = 200


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE PostgreSQL (or asyncpg, for values it cannot encode) gave, if any."""
    original = getattr(exc, "orig", None)
    for candidate in (original, getattr(original, "__cause__", None), exc):
        code = getattr(candidate, "sqlstate", None)
        if isinstance(code, str):
            return code
    return None


def is_unavailable(exc: BaseException) -> bool:
    """True when the database cannot work at all right now; False when what was sent is to blame."""
    code = sqlstate(exc)
    if code is not None:
        return code[:2] in _UNAVAILABLE_CLASSES
    return _lost_connection(exc)


def read_failure(exc: BaseException) -> str | None:
    """Why a read failed, as the reader's answer puts it; None when it is no database error."""
    code = sqlstate(exc)
    if code == UNDEFINED_TABLE:
        return "the database holds no recordings yet: the proxy creates its schema on first use"
    if _lost_connection(exc) or (code is not None and code.startswith("08")):
        return f"the database cannot be reached ({describe(exc)})"
    if isinstance(exc, OSError | SQLAlchemyError):
        return f"the database cannot answer ({describe(exc)})"
    return None


def _lost_connection(exc: BaseException) -> bool:
    if isinstance(exc, OSError | PoolTimeout | DisconnectionError):  # OSError covers TimeoutError
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, InterfaceError)  # the driver's connection is closed or broken


def describe(exc: BaseException) -> str:
    """One line for a log or an error message: the error's kind, SQLSTATE and first line.

    Never a parameter: SQLAlchemy's own text lists them, asyncpg's quotes a refused value.
    """
    original = getattr(exc, "orig", None) or exc
    cause = getattr(original, "__cause__", None)
    named = cause if cause is not None and getattr(cause, "sqlstate", None) else original
    lines = str(named).splitlines()
    first = lines[0] if lines else ""
    if match := _ARGUMENT_VALUE.match(first):
        first = f"{match.group(1)} ({match.group(2)})"
    code = sqlstate(exc)
    kind = type(named).__name__ + (f" [{code}]" if code else "")
    return f"{kind}: {first[:_MAX_REASON]}" if first else kind
