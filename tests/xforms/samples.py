"""Sample submissions and what each becomes: shared by the xforms and payload tests."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qsl

from hypothesis import strategies as st

from tests.helpers import fixture_bytes

FORM_UID = "aZ7kqP3wXbLmN2vR8tYs5d"


XML_DECL = b'<?xml version="1.0" encoding="UTF-8"?>\n'


COMMENTS = "Puits à réparer; <urgent> & à suivre"


COMMENTS_XML = "Puits à réparer; &lt;urgent&gt; &amp; à suivre"

ODK_XML = fixture_bytes("odk_instance.xml")


KOBO_BODY = fixture_bytes("kobo_flat.json")


NESTED_BODY = fixture_bytes("nested.json")


WEBFORM_BODY = fixture_bytes("webform.urlencoded")

# The exact KoboToolbox-style JSON of odk_instance.xml.
ODK_JSON = {
    "start": "2026-11-20T09:14:03.512+01:00",
    "end": "2026-11-20T09:21:47.020+01:00",
    "household/head_name": "Aïssatou Diallo",
    "household/members": "6",
    "household/water/source": "borehole",
    "household/water/distance_m": "350",
    "crop_repeat": [
        {"crop_repeat/crop_name": "maize", "crop_repeat/area_ha": "1.5"},
        {"crop_repeat/crop_name": "sorghum", "crop_repeat/area_ha": "0.75"},
    ],
    "location": "12.6392 -8.0029 312 5",
    "comments": COMMENTS,
    "meta/instanceID": "uuid:9d2e4c71-5b0a-4f3e-8c6d-2a1f7b9e0c35",
    "meta/instanceName": "Diallo 2026-11-20",
}


# The exact XML of kobo_flat.json with the form uid as root.
KOBO_XML = (
    XML_DECL.decode() + f'<{FORM_UID} id="{FORM_UID}">'
    "<_id>48213</_id>"
    "<formhub><uuid>a81b6f02c4d94b8e9e7c2f1d0b3a6e55</uuid></formhub>"
    "<start>2026-11-20T09:14:03.512+01:00</start>"
    "<end>2026-11-20T09:21:47.020+01:00</end>"
    "<today>2026-11-20</today>"
    "<household><head_name>Aïssatou Diallo</head_name><members>6</members>"
    "<water><source>borehole</source><distance_m>350</distance_m></water></household>"
    "<crops>maize sorghum</crops>"
    "<crop_repeat><crop_name>maize</crop_name><area_ha>1.5</area_ha></crop_repeat>"
    "<crop_repeat><crop_name>sorghum</crop_name><area_ha>0.75</area_ha></crop_repeat>"
    "<location>12.6392 -8.0029 312 5</location>"
    "<photo>IMG_20261120_091812.jpg</photo>"
    f"<comments>{COMMENTS_XML}</comments>"
    "<__version__>vQ7zgU9dCkXv4NQFh6sYpC</__version__>"
    "<meta><instanceID>uuid:3f0c1b9e-7a52-4d8e-9a61-0c2b7e5d4f18</instanceID></meta>"
    "<_xform_id_string>aZ7kqP3wXbLmN2vR8tYs5d</_xform_id_string>"
    "<_uuid>3f0c1b9e-7a52-4d8e-9a61-0c2b7e5d4f18</_uuid>"
    "<_attachments><mimetype>image/jpeg</mimetype>"
    "<filename>enumerator/attachments/IMG_20261120_091812.jpg</filename>"
    "<instance>48213</instance><xform>911</xform></_attachments>"
    "<_status>submitted_via_web</_status>"
    "<_geolocation>12.6392</_geolocation><_geolocation>-8.0029</_geolocation>"
    "<_submission_time>2026-11-20T08:22:05</_submission_time>"
    "<_validation_status />"
    "<_submitted_by>enumerator</_submitted_by>"
    f"</{FORM_UID}>"
).encode()


NESTED_XML = (
    XML_DECL + b'<nF0rm id="nF0rm">'
    b"<household><head_name>Kofi Mensah</head_name><members>4</members>"
    b"<water><source>piped</source><distance_m>20</distance_m></water></household>"
    b"<crop_repeat><crop_name>cassava</crop_name><area_ha>2.0</area_ha></crop_repeat>"
    b"<consent>true</consent><score>7.5</score><notes />"
    b"<meta><instanceID>uuid:1c7a9e02-3d4b-4f6a-b8e1-5f0d2c9a7b64</instanceID></meta>"
    b"</nF0rm>"
)


SUBSET = ["household/water", "crop_name", "meta/instanceID", "_id"]


def kobo() -> dict:
    return json.loads(KOBO_BODY)


def nested() -> dict:
    return json.loads(NESTED_BODY)


def webform() -> dict:
    """The object an urlencoded post becomes (a repeated key -> a list)."""
    data: dict = {}
    for key, value in parse_qsl(WEBFORM_BODY.decode().strip()):
        if key in data:
            previous = data[key]
            data[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            data[key] = value
    return data


# --------------------------------------------------------------------------
# Hypothesis strategies
# --------------------------------------------------------------------------

INVALID_XML_CHARS = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)


json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=6)


xml_texts = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Cn"), blacklist_characters="\ufffe\uffff")
    | st.sampled_from("\t\n\r<>&\"'"),
    max_size=20,
)


path_keys = st.text(alphabet="ab/c", max_size=6)


subset_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, min_size=1, max_size=4)
        | st.dictionaries(path_keys, children, max_size=4)
    ),
    max_leaves=20,
)
