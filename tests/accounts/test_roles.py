import pytest
from django.contrib.auth.models import Group

from accounts.roles import ADMIN, EXPERIMENTER, VIEWER, assign_role
from tests.conftest import as_user
from tests.factories import UserFactory


@pytest.mark.django_db
def test_the_three_roles_exist_after_migrate():
    assert set(Group.objects.values_list("name", flat=True)) >= {VIEWER, EXPERIMENTER, ADMIN}


@pytest.mark.django_db
def test_viewer_only_reads():
    perms = {p.codename for p in Group.objects.get(name=VIEWER).permissions.all()}
    assert all(codename.startswith("view_") for codename in perms)


@pytest.mark.django_db
def test_role_grants_nest():
    def perms(role):
        return set(Group.objects.get(name=role).permissions.values_list("id", flat=True))

    assert perms(VIEWER) <= perms(EXPERIMENTER) <= perms(ADMIN)
    admin_codenames = set(Group.objects.get(name=ADMIN).permissions.values_list("codename", flat=True))
    assert {"add_apikey", "change_apikey", "view_apikey"} <= admin_codenames


@pytest.mark.django_db
@pytest.mark.parametrize(
    "role, list_status, create_status",
    [(VIEWER, 403, 403), (EXPERIMENTER, 403, 403), (ADMIN, 200, 201)],
)
def test_only_admins_manage_api_keys(role, list_status, create_status):
    client = as_user(UserFactory(role=role))
    assert client.get("/api/v1/api-keys").status_code == list_status
    assert client.post("/api/v1/api-keys", {"name": "k"}, format="json").status_code == create_status


@pytest.mark.django_db
def test_admin_role_is_staff_and_other_roles_are_not():
    user = UserFactory(role=ADMIN)
    assert user.is_staff
    assign_role(user, VIEWER)
    user.refresh_from_db()
    assert not user.is_staff


@pytest.mark.django_db
def test_unknown_role_is_refused():
    with pytest.raises(ValueError, match="unknown role"):
        assign_role(UserFactory(), "owner")
