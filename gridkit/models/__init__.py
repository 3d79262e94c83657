"""All gridkit tables (SQLAlchemy 2 + GeoAlchemy2), in EPSG:4490."""

from gridkit.models.admin import ADMIN_LEVELS, AdminUnit
from gridkit.models.base import SRID, Base
from gridkit.models.checks import EditionCheck, LoginFailure
from gridkit.models.basegrid import EDITION_STATUSES, BaseCell, BaseGridEdition
from gridkit.models.incidents import INCIDENT_STATUSES, Incident, IncidentCategory, IncidentHistory
from gridkit.models.subjects import POPULATION_TYPES, Building, LegalEntity, Resident
from gridkit.models.users import ROLES, AuditLog, User
from gridkit.models.work import (Coordinator, CoordinatorAssignment, Department, WorkCell,
                                 WorkCellMember, WorkGridExclusion, WorkGridVersion)

__all__ = [
    "SRID", "Base", "ADMIN_LEVELS", "AdminUnit", "EDITION_STATUSES", "BaseGridEdition", "BaseCell",
    "Department", "WorkGridVersion", "WorkCell", "WorkCellMember", "WorkGridExclusion", "Coordinator",
    "CoordinatorAssignment", "POPULATION_TYPES", "Building", "Resident", "LegalEntity",
    "INCIDENT_STATUSES", "IncidentCategory", "Incident", "IncidentHistory", "ROLES", "User",
    "AuditLog", "EditionCheck", "LoginFailure",
]
