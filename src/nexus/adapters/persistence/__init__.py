"""PostgreSQL: the embedded server, the engine, migrations, repositories and the recorder."""
