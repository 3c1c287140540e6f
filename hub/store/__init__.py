"""The customer-interaction store: tables, migrations, engines and transactions, blobs, and the durable work queue."""
