"""Stored submissions through the API: big bodies stay out of lists, the detail has them."""

from __future__ import annotations

from tests.admin.admin_support import add_logs
from tests.api.test_api_forms import ingest
from tests.helpers import BIG, add_big_submissions, peak_memory
from webapp.api.forms import LIST_DATA_MAX_BYTES, SUBMISSIONS_MAX_LIMIT


def test_a_list_of_big_submissions_loads_no_body(app, api, make):
    """10 bodies of 9 MB: the page's memory stays far below one body's size."""
    form_uid, _ = make.form()
    ids = add_big_submissions(app, form_uid)
    url = f"/api/v1/forms/{form_uid}/submissions?limit=10"
    response, peak = peak_memory(lambda: api.get(url))
    assert response.status_code == 200
    assert peak < 8 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"
    results = response.json["results"]
    assert sorted(s["id"] for s in results) == ids
    for item in results:
        assert item["data"] is None and item["data_omitted"] is True
        assert item["size"] > BIG - 100
        assert item["url"].endswith(f"/api/v1/forms/{form_uid}/submissions/{item['id']}")
    # The detail has the data, in full.
    detail = api.get(results[0]["url"]).json
    assert len(detail["data"]["blob"]) == BIG - 64 and detail["data_omitted"] is False


def test_small_data_is_in_the_list_big_data_in_the_detail(api, client, make):
    form_uid, token = make.form()
    small = ingest(client, form_uid, token, {"q": "small", "meta": {"instanceID": "uuid:s"}})
    big = {"q": "x" * LIST_DATA_MAX_BYTES, "meta": {"instanceID": "uuid:b"}}
    ingest(client, form_uid, token, big)
    page = api.get(f"/api/v1/forms/{form_uid}/submissions").json
    by_id = {s["instance_id"]: s for s in page["results"]}
    assert by_id["uuid:s"]["data"]["q"] == "small" and by_id["uuid:s"]["data_omitted"] is False
    assert by_id["uuid:b"]["data"] is None and by_id["uuid:b"]["data_omitted"] is True
    assert api.get(by_id["uuid:b"]["url"]).json["data"] == big
    detail = api.get(f"/api/v1/forms/{form_uid}/submissions/{small['id']}")
    assert detail.status_code == 200 and detail.json["data"]["q"] == "small"


def test_the_page_size_of_submissions_is_capped(app, api, make):
    form_uid, _ = make.form()
    add_logs(app, make.hook(form_uid), SUBMISSIONS_MAX_LIMIT + 1)
    page = api.get(f"/api/v1/forms/{form_uid}/submissions?limit=100000").json
    assert len(page["results"]) == SUBMISSIONS_MAX_LIMIT
    assert page["next"].endswith(f"?limit={SUBMISSIONS_MAX_LIMIT}&start={SUBMISSIONS_MAX_LIMIT}")


def test_the_detail_of_another_forms_submission_is_404(api, client, make):
    form_uid, token = make.form()
    other_uid, _ = make.form(name="Other")
    answer = ingest(client, form_uid, token, {"q": 1, "meta": {"instanceID": "uuid:o"}})
    assert api.get(f"/api/v1/forms/{other_uid}/submissions/{answer['id']}").status_code == 404
    assert api.get(f"/api/v1/forms/{form_uid}/submissions/999999").status_code == 404
    assert api.get(f"/api/v1/forms/{form_uid}/submissions/{answer['id']}").status_code == 200


def test_an_edited_submission_is_one_item_with_its_latest_version(api, client, make):
    """The list's size and data are the latest version's; the detail has all versions."""
    form_uid, token = make.form()
    ingest(client, form_uid, token, {"q": "first", "meta": {"instanceID": "uuid:e1"}})
    big = {
        "q": "x" * LIST_DATA_MAX_BYTES,
        "meta": {"instanceID": "uuid:e2", "deprecatedID": "uuid:e1"},
    }
    ingest(client, form_uid, token, big)
    page = api.get(f"/api/v1/forms/{form_uid}/submissions").json
    assert page["count"] == 1
    [item] = page["results"]
    assert (item["instance_id"], item["root_instance_id"], item["versions"]) == (
        "uuid:e2",
        "uuid:e1",
        2,
    )
    assert item["size"] > LIST_DATA_MAX_BYTES  # the edit's body, not the first one's
    assert item["data"] is None and item["data_omitted"] is True
    detail = api.get(item["url"]).json
    assert detail["data"] == big and detail["data_omitted"] is False
    assert detail["size"] == item["size"] and detail["root_instance_id"] == "uuid:e1"
    assert [(v["number"], v["instance_id"], v["data"]["q"][:5]) for v in detail["versions"]] == [
        (1, "uuid:e1", "first"),
        (2, "uuid:e2", "xxxxx"),
    ]


def test_a_small_edit_is_listed_with_its_data(api, client, make):
    form_uid, token = make.form()
    ingest(
        client, form_uid, token, {"q": "x" * LIST_DATA_MAX_BYTES, "meta": {"instanceID": "uuid:f1"}}
    )
    edit = {"q": "small", "meta": {"instanceID": "uuid:f2", "deprecatedID": "uuid:f1"}}
    ingest(client, form_uid, token, edit)
    [item] = api.get(f"/api/v1/forms/{form_uid}/submissions").json["results"]
    assert item["data"] == edit and item["data_omitted"] is False
    assert item["size"] < 200 and item["versions"] == 2
