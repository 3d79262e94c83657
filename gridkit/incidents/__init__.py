"""Incidents (事件/部件问题) along the 7 steps.

- categories: the category table (seeded from gridkit/standard/categories.csv): department, hours per step;
- components: the component inventory (部件) import and its base cells;
- workflow: every transition (the only place a case changes state), and the entry for the rest:
  report (信息采集: report_incident, duplicates), deadlines (which action from which state, the
  clocks per step), cases (finding a case, responsibility as of its report time, history rows);
- personal: coordinators' names and phones shown in clear (audited) or masked;
- demo_cases: the demo city's cases carried along the workflow;
- actors: who acts (role, geographic scope); queries: show, list, overdue and escalation;
- attachments: feedback photos; evaluate: 综合评价; heatmap: density aggregated in PostGIS;
- importer: historic cases with their own timestamps through a mapping file.
"""
