"""National and industry standards as pure Python: identity numbers, code layouts, category tables."""
