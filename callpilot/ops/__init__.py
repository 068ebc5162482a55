"""Operations: KPIs over the call records, Prometheus metrics, the dashboard, threshold alerts, webhooks."""
