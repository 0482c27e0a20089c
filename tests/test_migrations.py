"""The README's example migration test, verbatim."""


def test_a_data_migration_with_data(migrator):
    migrator.up_before("fe95ecace8c3")  # everything the revision needs, not the revision
    migrator.insert("users", {"email": "ann@example.com", "display_name": "Ann"})
    migrator.up("fe95ecace8c3", module="users")
    assert migrator.fetch("SELECT email, preferences FROM users") == [("ann@example.com", "{}")]
