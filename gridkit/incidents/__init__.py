"""Incidents (事件/部件问题) along the 7 steps.

- categories: the category table (seeded from gridkit/standard/categories.csv): department, hours per step;
- components: the component inventory (部件) import and its base cells;
- workflow: report_incident and every transition (the only place a case changes state);
- actors: who acts (role, geographic scope); queries: show, list, overdue and escalation;
- attachments: feedback photos; evaluate: 综合评价; heatmap: density aggregated in PostGIS;
- importer: historic cases with their own timestamps through a mapping file.
"""
