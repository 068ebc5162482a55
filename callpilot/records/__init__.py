"""Call records in SQL: tables, migrations, the buffered writer, the /api/v1 routes, auth, privacy, CRM."""
