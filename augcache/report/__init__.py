"""The report: costs of the jobs, tables, figures, the side-by-side comparison and the page."""
