"""The "Link to this view" box every page shows, and the notice for parameters it ignored.

The view's widgets are bound to the URL (``bind="query-params"``), so the browser's address
*is* the link. The box reads it in the browser when opened (``window.location.href``): a
fragment's rerun (the Image page's layer browser) changes the URL without rerunning the rest
of the page, so a link built in Python at the end of the run could be stale.

A page's clicked unit travels too (the Draw and Image pages keep it the same way): which
unit to show and what the URL then holds are :mod:`explorer.views.links`'s pure
:func:`~explorer.views.links.clicked_unit` and :func:`~explorer.views.links.unit_param`;
:func:`restore_unit` and :func:`link_unit` only read and write the session and the URL.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from explorer.analysis.capture import CaptureResult
from explorer.hosting.addresses import VIEW_LINK_COMPONENT
from explorer.views.links import Unit, clicked_unit, ignored_params, notice, param_kind, unit_param

SEEN_SELECTIONS = "seen_selections"
"""Session state: each clickable chart's last selected unit (:func:`new_selection`)."""
CSS = """
.cnn-link summary { cursor: pointer; font: 14px var(--st-font, sans-serif);
  color: var(--st-text-color, #31333f); }
.cnn-link .row { display: flex; gap: 6px; margin-top: 6px; max-width: 720px; }
.cnn-link input { flex: 1; min-width: 0; font: 13px monospace; padding: 4px 6px;
  border: 1px solid var(--st-border-color, #d5d7de); border-radius: 6px;
  background: var(--st-secondary-background-color, #f0f2f6); color: inherit; }
.cnn-link button { font: 14px var(--st-font, sans-serif); padding: 2px 10px; cursor: pointer;
  border: 1px solid var(--st-border-color, #d5d7de); border-radius: 6px;
  background: var(--st-background-color, #fff); color: var(--st-text-color, #31333f); }
.cnn-link .note { margin: 4px 0 0; font: 13px var(--st-font, sans-serif);
  color: var(--st-text-color, #31333f); opacity: 0.8; }
"""

JS = """
// Material Symbols' "link", drawn inline: no emoji font needed.
const ICON = `<svg viewBox="0 0 24 24" width="16" height="16" aria-hidden="true"
  style="vertical-align: -3px; fill: currentColor"><path d="M3.9 12c0-1.71 1.39-3.1
  3.1-3.1h4V7H7c-2.76 0-5 2.24-5 5s2.24 5 5 5h4v-1.9H7c-1.71 0-3.1-1.39-3.1-3.1zM8 13h8v-2H8v2z
  m9-6h-4v1.9h4c1.71 0 3.1 1.39 3.1 3.1s-1.39 3.1-3.1 3.1h-4V17h4c2.76 0 5-2.24 5-5s-2.24-5-5-5z"/>
  </svg>`;


export default function (component) {

  const { data, parentElement } = component;
  let root = parentElement.querySelector(".cnn-link");
  if (!root) {
    root = document.createElement("details");
    root.className = "cnn-link";
    root.innerHTML = `<summary>${ICON} Link to this view</summary>
      <div class="row"><input class="url" readonly aria-label="Link to this view">
      <button class="copy" type="button">Copy</button></div><p class="note"></p>`;
    parentElement.appendChild(root);
    const url = root.querySelector(".url");
    const copy = root.querySelector(".copy");
    // Read when looked at: the address changes with every bound widget, fragments included.
    const fill = () => { url.value = window.location.href; };
    root.addEventListener("toggle", () => { if (root.open) { fill(); url.select(); } });
    url.addEventListener("focus", () => { fill(); url.select(); });
    copy.addEventListener("click", async () => {
      fill();
      url.select();
      let copied = false;
      try {
        await navigator.clipboard.writeText(url.value);
        copied = true;
      } catch (error) {  // no clipboard outside https or localhost: the old way
        copied = document.execCommand("copy");
      }
      copy.textContent = copied ? "Copied" : "Press Ctrl+C";
      setTimeout(() => { copy.textContent = "Copy"; }, 2000);
    });
  }
  root.querySelector(".note").textContent = (data && data.note) || "";
}
"""

_link_box = st.components.v2.component(VIEW_LINK_COMPONENT, html="", css=CSS, js=JS)
CHECKED_KEY = "view_link_checked"  # session state: page → (its notices, the query after them)


def query_now() -> dict[str, str]:
    """The query string now, a value a key (repeated values joined by commas)."""
    return {key: ",".join(st.query_params.get_all(key)) for key in st.query_params}


@dataclass(frozen=True)
class ViewLink:
    """Where a page's link box goes, and the query string its run started with."""

    page: str
    start: dict[str, str]
    box: DeltaGenerator


def start_view_link(page: str) -> ViewLink:
    """Keep the query string as the run starts and a place for the box (call it first)."""
    return ViewLink(page, query_now(), st.container())


def finish_view_link(link: ViewLink, note: str | None = None) -> None:
    """The link box and, on the page's first run, a line for each parameter it ignored.

    Args:
        link: What :func:`start_view_link` returned.
        note: What the link cannot carry (an upload, a photo), shown under it.
    """
    checked: dict[str, tuple[list[str], dict[str, str]]] = st.session_state.setdefault(
        CHECKED_KEY, {}
    )
    after = query_now()
    if link.page not in checked:  # a link is opened once: later runs are the student's own
        shown = {key: st.session_state[key] for key in link.start if key in st.session_state}
        lines = [
            notice(ignored, param_kind(ignored.key))
            for ignored in ignored_params(link.start, after, shown)
        ]
        checked[link.page] = (lines, after)
    lines, seen = checked[link.page]
    with link.box:
        if lines and seen == after:  # until the student changes the view
            st.caption("\n\n".join(lines))
        _link_box(key=f"view_link_{link.page}", data={"note": note or ""}, width="stretch")


def restore_unit(
    key: str, param: str, result: CaptureResult, on: tuple[str, int | None] | None = None
) -> Unit | None:
    """The clicked unit to show for ``result``, kept in ``st.session_state[key]``.

    On the session's first run that shows a capture, the URL's ``param`` names it (a link
    being opened); after that the session does. A unit ``result`` lacks (or not ``on`` the
    layer and channel shown) is dropped: :func:`link_unit` then drops the parameter, and the
    link box says it ignored it.
    """
    linked_key = f"{key}_linked"
    opening = not st.session_state.get(linked_key)
    st.session_state[linked_key] = True
    unit = clicked_unit(
        st.session_state.get(key), st.query_params.get(param), result, opening=opening, on=on
    )
    if unit is None:
        st.session_state.pop(key, None)
    else:
        st.session_state[key] = unit
    return unit


def link_unit(key: str, param: str) -> None:
    """Write the clicked unit in ``st.session_state[key]`` to the URL's ``param`` (or drop it)."""
    value = unit_param(st.session_state.get(key))
    if value is None:
        st.query_params.pop(param, None)
    elif st.query_params.get(param) != value:
        st.query_params[param] = value


def new_selection(chart: str, picked: tuple[int, ...] | None) -> bool:
    """Whether chart ``chart``'s selected unit ``picked`` changed since this session last saw it.

    A chart keeps its selection over reruns: only a change is a click (or, to ``None``, an
    un-select), so a selection still held from before never undoes a Close or a link.
    """
    seen: dict[str, tuple[int, ...] | None] = st.session_state.setdefault(SEEN_SELECTIONS, {})
    if seen.get(chart) == picked:  # a chart never seen had no selection
        return False
    seen[chart] = picked
    return True
