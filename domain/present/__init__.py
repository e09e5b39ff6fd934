"""The presentation of figures to people: texts, charts, export workbooks and their words; pure
(no SQL, no storage, no channel)."""
