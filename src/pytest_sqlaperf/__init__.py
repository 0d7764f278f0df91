"""pytest-sqlaperf: performance regression testing for SQLAlchemy on PostgreSQL."""

from .capture.querylog import CallSite, QueryLog, Statement
from .errors import SqlaperfError
from .fixtures import BudgetExceeded, Sqlaperf
from .markers import max_queries
from .records import record_of

__all__ = [
    "BudgetExceeded",
    "CallSite",
    "QueryLog",
    "Sqlaperf",
    "SqlaperfError",
    "Statement",
    "max_queries",
    "record_of",
]
