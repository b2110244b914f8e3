"""Customer lookup and the screen-pop detail."""

from __future__ import annotations

from tests.api.conftest import SHARED_PHONE, SHARED_RO, Api

# Loops rather than parametrize: each case would otherwise rebuild the world on two databases.


def test_lookup_by_phone_in_any_format(api: Api) -> None:
    for phone in ("(555) 020-0001", "555.020.0001", "+1 555 020 0001", "15550200001", SHARED_PHONE):
        response = api.as_("ann").get("/customers", params={"phone": phone})
        assert response.status_code == 200
        items = response.json()["items"]
        assert [c["id"] for c in items] == [api.world.customers["A"]], phone
        assert items[0]["phones"] == [{"e164": SHARED_PHONE, "label": "mobile"}]
    assert api.as_("ann").get("/customers", params={"phone": "555-999-0000"}).json()["items"] == []


def test_bad_phone_is_422_naming_the_field(api: Api) -> None:
    for phone in ("hello", "12", ""):
        response = api.as_("ann").get("/customers", params={"phone": phone})
        assert response.status_code == 422, phone
        assert response.json()["detail"][0]["loc"] == ["query", "phone"]


def test_lookup_by_name_prefix_ignores_case(api: Api) -> None:
    cases = {"jo": ["Jo"], "SMI": ["Jo"], "jo smith": ["Jo"], "z": ["Zed"], "%": [], "mith": []}
    for name, expected in cases.items():
        items = api.as_("ann").get("/customers", params={"name": name}).json()["items"]
        assert [c["first_name"] for c in items] == expected, name


def test_lookup_by_ro_number_and_paging(api: Api) -> None:
    ann = api.as_("ann")
    items = ann.get("/customers", params={"ro": SHARED_RO}).json()["items"]
    assert [c["id"] for c in items] == [api.world.customers["A"]]
    assert ann.get("/customers", params={"ro": "nope"}).json()["items"] == []
    first = ann.get("/customers", params={"limit": 1}).json()
    assert len(first["items"]) == 1 and first["next_offset"] == 1
    second = ann.get("/customers", params={"limit": 1, "offset": 1}).json()
    assert second["next_offset"] is None
    assert first["items"][0]["id"] != second["items"][0]["id"]


def test_customer_detail_is_the_screen_pop(api: Api) -> None:
    detail = api.as_("ann").get(f"/customers/{api.world.customers['A']}").json()
    assert detail["name"] == "Jo Smith"
    assert detail["advisor"]["username"] == "ann"
    assert detail["vehicles"][0]["model"] == "Civic"
    # Only the open RO, with its history in time order; the closed one is left out.
    [ro] = detail["open_repair_orders"]
    assert ro["number"] == SHARED_RO and ro["status"] == "In Shop"
    assert [e["status"] for e in ro["history"]] == ["Waiting on Dispatch", "In Shop"]
    assert ro["vehicle"]["vin"] == "VINA" and ro["advisor"]["username"] == "ann"


def test_vehicles_of_a_customer(api: Api) -> None:
    vehicles = api.as_("ann").get(f"/customers/{api.world.customers['A']}/vehicles").json()
    assert [(v["year"], v["make"]) for v in vehicles] == [(2019, "Honda")]


def test_bad_ids_are_4xx(api: Api) -> None:
    for path in ("/customers/0", "/customers/abc", "/customers/99999999999", "/customers/-1"):
        assert api.as_("ann").get(path).status_code == 422, path
    assert api.as_("ann").get("/customers/424242").status_code == 404
