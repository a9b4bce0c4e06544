from bat_core.pytest_fixtures import demo_root, demo_template  # noqa: F401
