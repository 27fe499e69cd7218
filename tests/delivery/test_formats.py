"""webapp.delivery.formats: what a hook sends, every sample through every path."""

from __future__ import annotations

import json

import pytest

from tests.xforms.samples import (
    COMMENTS,
    FORM_UID,
    KOBO_BODY,
    KOBO_XML,
    NESTED_BODY,
    NESTED_XML,
    ODK_JSON,
    ODK_XML,
    SUBSET,
    WEBFORM_BODY,
    XML_DECL,
    kobo,
    nested,
    webform,
)
from webapp.delivery.formats import PayloadError, build_payload
from webapp.delivery.wrapper import apply_payload_template
from webapp.xforms import parse_xml, xml_to_json

JSON = "application/json"
XML = "application/xml"
URLENCODED = "application/x-www-form-urlencoded"


def build(**kwargs) -> tuple[bytes, str]:
    args = {"form_uid": FORM_UID, "subset_fields": [], "payload_template": None, **kwargs}
    return build_payload(**args)


def from_odk(**kwargs) -> tuple[bytes, str]:
    return build(content_type=XML, body=ODK_XML, data=xml_to_json(parse_xml(ODK_XML)), **kwargs)


ODK_JSON_BYTES = json.dumps(ODK_JSON, ensure_ascii=False, separators=(",", ":")).encode()


def test_odk_xml_to_xml_is_the_body_as_received():
    body, content_type = from_odk(export_type="xml")
    assert body == ODK_XML
    assert content_type == "application/xml"


def test_odk_xml_to_json():
    body, content_type = from_odk(export_type="json")
    assert content_type == "application/json"
    assert body == ODK_JSON_BYTES
    assert json.loads(body) == ODK_JSON
    assert COMMENTS.encode() in body  # raw UTF-8, nothing escaped


def test_odk_xml_to_json_subset_exact():
    body, _ = from_odk(export_type="json", subset_fields=SUBSET)
    assert body == (
        b'{"household/water/source":"borehole","household/water/distance_m":"350",'
        b'"crop_repeat":[{"crop_repeat/crop_name":"maize"},{"crop_repeat/crop_name":"sorghum"}],'
        b'"meta/instanceID":"uuid:9d2e4c71-5b0a-4f3e-8c6d-2a1f7b9e0c35"}'
    )


def test_odk_xml_to_json_with_template():
    template = '{"form": "household", "submission": %SUBMISSION%, "again": [%SUBMISSION%]}'
    body, content_type = from_odk(export_type="json", payload_template=template)
    assert content_type == "application/json"
    text = ODK_JSON_BYTES.decode()
    assert body == f'{{"form": "household", "submission": {text}, "again": [{text}]}}'.encode()
    body, _ = from_odk(
        export_type="json", subset_fields=["instanceName"], payload_template=template
    )
    assert json.loads(body) == {
        "form": "household",
        "submission": {"meta/instanceName": "Diallo 2026-11-20"},
        "again": [{"meta/instanceName": "Diallo 2026-11-20"}],
    }


@pytest.mark.parametrize("source", ["odk", "kobo"])
def test_template_with_xml_export_is_refused(source):
    with pytest.raises(PayloadError, match="only be used with the JSON format"):
        if source == "odk":
            from_odk(export_type="xml", payload_template='{"a": %SUBMISSION%}')
        else:
            build(
                content_type=JSON,
                body=KOBO_BODY,
                data=kobo(),
                export_type="xml",
                payload_template="{}",
            )


def test_kobo_json_to_json_is_the_body_as_received():
    body, content_type = build(content_type=JSON, body=KOBO_BODY, data=kobo(), export_type="json")
    assert body == KOBO_BODY
    assert content_type == "application/json"


def test_kobo_json_to_json_subset_exact():
    body, _ = build(
        content_type=JSON, body=KOBO_BODY, data=kobo(), export_type="json", subset_fields=SUBSET
    )
    assert body == (
        b'{"_id":48213,"household/water/source":"borehole","household/water/distance_m":"350",'
        b'"crop_repeat":[{"crop_repeat/crop_name":"maize"},{"crop_repeat/crop_name":"sorghum"}],'
        b'"meta/instanceID":"uuid:3f0c1b9e-7a52-4d8e-9a61-0c2b7e5d4f18"}'
    )


def test_kobo_json_with_template():
    body, _ = build(
        content_type=JSON,
        body=KOBO_BODY,
        data=kobo(),
        export_type="json",
        subset_fields=["comments"],
        payload_template='{"event": "submission", "data": %SUBMISSION%}',
    )
    assert body == f'{{"event": "submission", "data": {{"comments":"{COMMENTS}"}}}}'.encode()


def test_kobo_json_to_xml_exact():
    body, content_type = build(content_type=JSON, body=KOBO_BODY, data=kobo(), export_type="xml")
    assert body == KOBO_XML
    assert content_type == "application/xml"


def test_kobo_json_to_xml_subset_exact():
    body, _ = build(
        content_type=JSON, body=KOBO_BODY, data=kobo(), export_type="xml", subset_fields=SUBSET
    )
    assert (
        body
        == (
            XML_DECL.decode() + f'<{FORM_UID} id="{FORM_UID}"><_id>48213</_id>'
            "<household><water><source>borehole</source><distance_m>350</distance_m></water></household>"
            "<crop_repeat><crop_name>maize</crop_name></crop_repeat>"
            "<crop_repeat><crop_name>sorghum</crop_name></crop_repeat>"
            "<meta><instanceID>uuid:3f0c1b9e-7a52-4d8e-9a61-0c2b7e5d4f18</instanceID></meta>"
            f"</{FORM_UID}>"
        ).encode()
    )


def test_nested_json_every_path():
    def nested_build(**kwargs):
        return build(content_type=JSON, body=NESTED_BODY, data=nested(), form_uid="nF0rm", **kwargs)

    assert nested_build(export_type="json") == (NESTED_BODY, "application/json")
    assert nested_build(export_type="json", subset_fields=SUBSET)[0] == (
        b'{"household":{"water":{"source":"piped","distance_m":20}},'
        b'"crop_repeat":[{"crop_name":"cassava"}],'
        b'"meta":{"instanceID":"uuid:1c7a9e02-3d4b-4f6a-b8e1-5f0d2c9a7b64"}}'
    )
    assert nested_build(export_type="json", payload_template='{"s": %SUBMISSION%}')[0] == (
        b'{"s": {"household":{"head_name":"Kofi Mensah","members":4,'
        b'"water":{"source":"piped","distance_m":20}},'
        b'"crop_repeat":[{"crop_name":"cassava","area_ha":2.0}],"consent":true,"score":7.5,'
        b'"notes":null,"meta":{"instanceID":"uuid:1c7a9e02-3d4b-4f6a-b8e1-5f0d2c9a7b64"}}}'
    )
    assert nested_build(export_type="xml") == (NESTED_XML, "application/xml")
    assert nested_build(export_type="xml", subset_fields=SUBSET)[0] == (
        XML_DECL + b'<nF0rm id="nF0rm">'
        b"<household><water><source>piped</source><distance_m>20</distance_m></water></household>"
        b"<crop_repeat><crop_name>cassava</crop_name></crop_repeat>"
        b"<meta><instanceID>uuid:1c7a9e02-3d4b-4f6a-b8e1-5f0d2c9a7b64</instanceID></meta></nF0rm>"
    )


def test_webform_urlencoded_every_path():
    data = webform()
    assert data["needs"] == ["shelter", "water"]

    def web_build(**kwargs):
        return build(
            content_type=URLENCODED, body=WEBFORM_BODY, data=data, form_uid="web1", **kwargs
        )

    # The body is urlencoded: the object is sent.
    assert (
        web_build(export_type="json")[0]
        == (
            '{"name":"Nadia Haddad","email":"nadia@example.org","district":"Bekaa",'
            '"needs":["shelter","water"],"message":"Besoin d\'aide à Zahlé"}'
        ).encode()
    )
    assert (
        web_build(export_type="json", subset_fields=["needs"])[0]
        == b'{"needs":["shelter","water"]}'
    )
    assert web_build(export_type="json", payload_template="[%SUBMISSION%]")[0].startswith(
        b'[{"name"'
    )
    assert (
        web_build(export_type="xml")[0]
        == (
            XML_DECL.decode()
            + '<web1 id="web1"><name>Nadia Haddad</name><email>nadia@example.org</email>'
            "<district>Bekaa</district><needs>shelter</needs><needs>water</needs>"
            "<message>Besoin d'aide à Zahlé</message></web1>"
        ).encode()
    )
    assert web_build(export_type="xml", subset_fields=["email"])[0] == (
        XML_DECL + b'<web1 id="web1"><email>nadia@example.org</email></web1>'
    )


def test_a_urlencoded_body_is_never_sent_as_is():
    # The stored content type says what the body is: an urlencoded body that
    # happens to parse as JSON is still sent as its object.
    body, _ = build(content_type=URLENCODED, body=b"[1, 2]", data={"a": 1}, export_type="json")
    assert body == b'{"a":1}'
    body, _ = build(
        content_type=URLENCODED, body=b'{"a=":1}', data={'{"a': '":1}'}, export_type="json"
    )
    assert body == b'{"{\\"a":"\\":1}"}'


def test_lone_surrogates_still_give_valid_utf8_json():
    body, _ = build(content_type=XML, body=b"<a/>", data={"s": "\ud800"}, export_type="json")
    assert body == b'{"s":"\\ud800"}'
    assert apply_payload_template("[%SUBMISSION%]", {"s": "\udfff"}) == b'[{"s":"\\udfff"}]'


def test_build_payload_failures_are_payload_errors():
    bad_xml = b"<data><a>1</b></data>"
    with pytest.raises(PayloadError, match="mismatched tag") as excinfo:
        build(content_type=XML, body=bad_xml, data={}, export_type="xml", subset_fields=["a"])
    assert isinstance(excinfo.value, ValueError)
    assert excinfo.value.permanent is True  # the same row fails the same way: no retries
    assert excinfo.value.message == str(excinfo.value)
    # Without a subset the stored XML is sent as received, unparsed.
    assert build(content_type=XML, body=bad_xml, data={}, export_type="xml")[0] == bad_xml
    with pytest.raises(PayloadError, match="Unknown export type"):
        build(content_type=JSON, body=b"{}", data={}, export_type="csv")
    with pytest.raises(PayloadError, match="Unknown submission content type"):
        build(content_type="text/yaml", body=b"{}", data={}, export_type="json")
    with pytest.raises(PayloadError, match="not a JSON object"):
        build(content_type=JSON, body=b"", data=["x"], export_type="xml")
    with pytest.raises(PayloadError):
        build(content_type=URLENCODED, body=b"", data={"a": object()}, export_type="json")
    deep: dict = {}
    node = deep
    for _ in range(5000):
        node["a"] = {}
        node = node["a"]
    with pytest.raises(PayloadError, match="nested too deeply"):
        build(content_type=JSON, body=b"", data=deep, export_type="xml")


def test_whitespace_template_counts_as_none():
    body, _ = build(
        content_type=JSON,
        body=KOBO_BODY,
        data=kobo(),
        export_type="json",
        payload_template="  \n",
    )
    assert body == KOBO_BODY
    assert build(content_type=JSON, body=b"", data={}, export_type="xml", payload_template="")[
        0
    ] == (XML_DECL + f'<{FORM_UID} id="{FORM_UID}" />'.encode())
