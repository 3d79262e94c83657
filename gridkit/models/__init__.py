"""All gridkit tables (SQLAlchemy 2 + GeoAlchemy2), in EPSG:4490."""

from gridkit.models.admin import ADMIN_LEVELS, PARENT_LEVEL, AdminUnit
from gridkit.models.base import SRID, Base
from gridkit.models.basegrid import EDITION_STATUSES, BaseCell, BaseGridEdition
from gridkit.models.calendar import CALENDAR_DAY_KINDS, WorkCalendarDay, WorkCalendarHours
from gridkit.models.checks import EditionCheck, LoginFailure
from gridkit.models.incidents import (
    INCIDENT_STATUSES,
    Component,
    Incident,
    IncidentAttachment,
    IncidentCategory,
    IncidentHistory,
)
from gridkit.models.subjects import POPULATION_TYPES, Building, LegalEntity, Resident, ResidentCell
from gridkit.models.users import ROLES, AuditLog, User
from gridkit.models.work import (
    Coordinator,
    CoordinatorAssignment,
    Department,
    WorkCell,
    WorkCellMember,
    WorkGridExclusion,
    WorkGridVersion,
)

__all__ = [
    "CALENDAR_DAY_KINDS",
    "WorkCalendarDay",
    "WorkCalendarHours",
    "ADMIN_LEVELS",
    "PARENT_LEVEL",
    "EDITION_STATUSES",
    "INCIDENT_STATUSES",
    "POPULATION_TYPES",
    "ROLES",
    "SRID",
    "AdminUnit",
    "AuditLog",
    "EditionCheck",
    "LoginFailure",
    "Base",
    "BaseCell",
    "BaseGridEdition",
    "Building",
    "Component",
    "Coordinator",
    "CoordinatorAssignment",
    "Department",
    "Incident",
    "IncidentAttachment",
    "IncidentCategory",
    "IncidentHistory",
    "LegalEntity",
    "Resident",
    "ResidentCell",
    "User",
    "WorkCell",
    "WorkCellMember",
    "WorkGridExclusion",
    "WorkGridVersion",
]
