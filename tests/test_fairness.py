"""The heavy-fairness benchmark's protocol: its messages read as Streamlit reads them.

Its field numbers are checked against Streamlit's with the client's, in ``test_loadtest.py``.
"""

from __future__ import annotations

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from explorer.bench.fairness import ARRAY_FIELDS, array_state, widgets_in, with_arrays
from explorer.hosting.messages import WidgetValue, encode_rerun


def test_array_values_merge_into_the_rerun_as_streamlit_reads_it() -> None:
    base = encode_rerun([WidgetValue("$$ID-1-image_model", "string_value", "VGG-16 (2014)")])
    payload = with_arrays(
        base,
        [
            array_state("$$ID-2-image_view", ["Why this class?"]),
            array_state("$$ID-3-image_why_window", [1.0]),
        ],
    )
    states = {w.id: w for w in BackMsg.FromString(payload).rerun_script.widget_states.widgets}
    assert states["$$ID-1-image_model"].string_value == "VGG-16 (2014)"
    assert list(states["$$ID-2-image_view"].string_array_value.data) == ["Why this class?"]
    assert list(states["$$ID-3-image_why_window"].double_array_value.data) == [1.0]


def test_widget_ids_and_alerts_are_read_from_the_servers_messages() -> None:
    group = ForwardMsg()
    group.delta.new_element.button_group.id = "$$ID-9-image_view"
    slider = ForwardMsg()
    slider.delta.new_element.slider.id = "$$ID-8-image_why_stride"
    alert = ForwardMsg()
    alert.delta.new_element.alert.body = "Not computed: over the budget"
    found = [widgets_in(m.SerializeToString()) for m in (group, slider, alert)]
    assert found == [
        [(str(ARRAY_FIELDS["Element.button_group"]), "$$ID-9-image_view", ())],
        [(str(ARRAY_FIELDS["Element.slider"]), "$$ID-8-image_why_stride", ())],
        [("alert", "Not computed: over the budget", ())],
    ]
