// The segment timeline of a video: one lane per label, each with a row of the model's segments and a row
// of the annotators' (distinguished by row, colour and pattern), a playhead, click to seek. Annotators
// edit their segments with the mouse (drag to move, drag an edge to resize, double-click to add) and the
// keyboard (see KEYS). Positions are percentages of the video's frames, so the timeline is laid out once
// and zooming or resizing the window costs no re-render. Saving is the page's business: every edit goes
// to `onEdit`, which answers with the stored segment (or throws, and the edit is undone).

import { clock, h, label, replace } from './dom.js';

export const KEYS = [
  ['← →', 'move the selected segment by a frame (with Shift: a second)'],
  ['Alt + ← →', 'move its end by a frame (with Shift: a second)'],
  ['Home / End', 'set its start / end to the playhead'],
  ['s', 'split it at the playhead'],
  ['Delete', 'delete it'],
  ['c', 'copy a model segment into an annotation'],
  ['a', 'add a segment of the chosen label at the playhead'],
  ['Enter', 'play from its start'],
  ['Tab', 'go to the next segment'],
];

/** Whether a segment came from a model (prediction) rather than an annotator. */
export function isModel(seg) {
  return seg.model_version_id !== null && seg.model_version_id !== undefined || seg.source === 'prediction';
}

export class Timeline {
  /**
   * @param {HTMLElement} container
   * @param {{frameCount: number, fps: number, editable: boolean, labels: Map<string,string>,
   *          onSeek: (frame: number) => void, onEdit: (op: string, seg: object, change: object) => Promise<object|null>,
   *          playhead: () => number, chosenLabel: () => string}} options
   */
  constructor(container, options) {
    this.container = container;
    this.o = options;
    this.frames = Math.max(1, options.frameCount);
    this.segments = new Map();
    this.elements = new Map();
    this.lanes = new Map();
    this.selected = null;
    this.zoom = 1;
    this.drag = null;
    this.root = h('div', { class: 'timeline', id: 'timeline', role: 'application', 'aria-label': 'Segment timeline' });
    this.scroller = h('div', { class: 'tl-scroll' });
    this.inner = h('div', { class: 'tl-inner' });
    this.ruler = h('div', { class: 'tl-ruler', 'aria-hidden': 'true' });
    this.lanesEl = h('div', { class: 'tl-lanes' });
    this.playheadEl = h('div', { class: 'tl-playhead', 'aria-hidden': 'true' });
    this.names = h('div', { class: 'tl-names' });
    this.inner.append(this.ruler, this.lanesEl, this.playheadEl);
    this.scroller.append(this.inner);
    this.root.append(this.names, this.scroller);
    replace(container, this.root);
    // For measuring in a test browser (the timeline's own render time); nothing in the app reads it.
    this.root.endoregTimeline = this;
    this.lanesEl.addEventListener('click', (e) => this.onClick(e));
    this.ruler.addEventListener('click', (e) => this.onClick(e));
    this.lanesEl.addEventListener('dblclick', (e) => this.onDoubleClick(e));
    this.lanesEl.addEventListener('pointerdown', (e) => this.onPointerDown(e));
    this.lanesEl.addEventListener('keydown', (e) => this.onKey(e));
    this.lanesEl.addEventListener('focusin', (e) => {
      const el = e.target.closest('.seg');
      if (el) this.select(Number(el.dataset.id), false);
    });
  }

  /** Replaces every segment and lays the timeline out. */
  setSegments(list, extraLabels = []) {
    this.segments = new Map(list.map((s) => [s.id, { ...s }]));
    const labels = new Set([...list.map((s) => s.label), ...extraLabels]);
    this.render([...labels].sort());
  }

  /** The label of each lane, in order. */
  laneLabels() {
    return [...this.lanes.keys()];
  }

  render(labels) {
    const t0 = performance.now();
    this.lanes = new Map();
    this.elements = new Map();
    const lanes = document.createDocumentFragment();
    const names = document.createDocumentFragment();
    for (const name of labels) {
      const model = h('div', { class: 'tl-row model', dataset: { row: 'model', label: name }, title: `${label(name)}: model` });
      const annotation = h('div', { class: 'tl-row annotation', dataset: { row: 'annotation', label: name }, title: `${label(name)}: annotation` });
      const lane = h('div', { class: 'tl-lane', dataset: { label: name } }, model, annotation);
      this.lanes.set(name, { lane, model, annotation });
      lanes.appendChild(lane);
      names.appendChild(h('div', { class: 'tl-name', dataset: { label: name } },
        h('span', {}, this.o.labels.get(name) || label(name)), h('small', {}, 'model'), h('small', {}, 'annotation')));
    }
    for (const seg of [...this.segments.values()].sort((a, b) => a.start_frame - b.start_frame)) {
      const el = this.segmentElement(seg);
      const lane = this.lanes.get(seg.label);
      if (lane) (isModel(seg) ? lane.model : lane.annotation).appendChild(el);
    }
    replace(this.lanesEl, lanes);
    replace(this.names, h('div', { class: 'tl-name ruler-name' }, 'time'), names);
    this.renderRuler();
    this.applyZoom();
    if (this.selected && this.elements.has(this.selected)) this.elements.get(this.selected).classList.add('selected');
    // Layout is part of the cost: read a size, so that it happens before the clock stops.
    void this.inner.offsetWidth;
    this.lastRenderMs = performance.now() - t0;
    this.root.dataset.renderMs = this.lastRenderMs.toFixed(1);
    return this.lastRenderMs;
  }

  segmentElement(seg) {
    const model = isModel(seg);
    const el = document.createElement('div');
    el.className = `seg ${model ? 'model' : 'annotation'}${this.o.editable && !model ? ' editable' : ''}`;
    el.tabIndex = 0;
    el.dataset.id = seg.id;
    el.dataset.label = seg.label;
    el.dataset.source = seg.source || '';
    this.place(el, seg);
    this.elements.set(seg.id, el);
    return el;
  }

  place(el, seg) {
    el.dataset.start = seg.start_frame;
    el.dataset.end = seg.end_frame;
    el.style.left = `${(seg.start_frame / this.frames) * 100}%`;
    el.style.width = `${((seg.end_frame + 1 - seg.start_frame) / this.frames) * 100}%`;
    const fps = this.o.fps;
    el.title = `${label(seg.label)} (${isModel(seg) ? 'model' : 'annotation'}): frames ${seg.start_frame}–${seg.end_frame}, ${clock(seg.start_frame / fps)}–${clock((seg.end_frame + 1) / fps)}`;
    el.setAttribute('aria-label', el.title);
  }

  renderRuler() {
    const seconds = this.frames / this.o.fps;
    const target = 10 * this.zoom;
    const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
    const step = steps.find((s) => seconds / s <= target) || 3600;
    const ticks = document.createDocumentFragment();
    for (let t = 0; t <= seconds; t += step) {
      const tick = h('span', { class: 'tick' }, clock(t));
      tick.style.left = `${(t / seconds) * 100}%`;
      ticks.appendChild(tick);
    }
    replace(this.ruler, ticks);
  }

  setZoom(zoom) {
    this.zoom = Math.min(256, Math.max(1, zoom));
    this.renderRuler();
    this.applyZoom();
    this.follow(true);
  }

  applyZoom() {
    this.inner.style.width = `${this.zoom * 100}%`;
  }

  /** Moves the playhead to `frame`. */
  setPlayhead(frame) {
    this.playhead = frame;
    this.playheadEl.style.left = `${(frame / this.frames) * 100}%`;
    this.follow(false);
  }

  /** Keeps the playhead in view when zoomed in. */
  follow(center) {
    if (this.zoom === 1 || this.drag) return;
    const width = this.inner.clientWidth;
    const x = ((this.playhead || 0) / this.frames) * width;
    const view = this.scroller.clientWidth;
    if (center || x < this.scroller.scrollLeft || x > this.scroller.scrollLeft + view - 20) this.scroller.scrollLeft = Math.max(0, x - view / 3);
  }

  frameAt(clientX) {
    const rect = this.inner.getBoundingClientRect();
    const f = Math.floor(((clientX - rect.left) / rect.width) * this.frames);
    return Math.min(this.frames - 1, Math.max(0, f));
  }

  select(id, focus = true) {
    if (this.selected && this.elements.has(this.selected)) this.elements.get(this.selected).classList.remove('selected');
    this.selected = this.segments.has(id) ? id : null;
    const el = this.selected ? this.elements.get(this.selected) : null;
    if (el) {
      el.classList.add('selected');
      if (focus && document.activeElement !== el) el.focus({ preventScroll: true });
    }
    this.o.onSelect?.(this.selected ? this.segments.get(this.selected) : null);
  }

  selectedSegment() {
    return this.selected ? this.segments.get(this.selected) : null;
  }

  onClick(e) {
    if (this.suppressClick) {
      this.suppressClick = false;
      return;
    }
    const el = e.target.closest('.seg');
    if (el) {
      this.select(Number(el.dataset.id));
      return;
    }
    this.o.onSeek(this.frameAt(e.clientX));
  }

  onDoubleClick(e) {
    if (!this.o.editable || e.target.closest('.seg')) return;
    const row = e.target.closest('.tl-row');
    if (!row) return;
    const frame = this.frameAt(e.clientX);
    this.add(row.dataset.label, frame);
  }

  /** Adds a two-second annotation of `labelName` from `frame`. */
  async add(labelName, frame) {
    if (!this.o.editable || !labelName) return;
    const length = Math.max(1, Math.round(this.o.fps * 2));
    const start = Math.min(frame, this.frames - 1);
    const end = Math.min(this.frames - 1, start + length - 1);
    const created = await this.o.onEdit('create', null, { label: labelName, start_frame: start, end_frame: end, source: 'annotation' });
    if (created) {
      this.put(created);
      this.select(created.id);
    }
  }

  /** Puts a stored segment (new or changed) in its place. */
  put(seg) {
    this.segments.set(seg.id, { ...seg });
    let el = this.elements.get(seg.id);
    if (!this.lanes.has(seg.label)) {
      this.render([...this.lanes.keys(), seg.label].sort());
      el = this.elements.get(seg.id);
    }
    if (!el) {
      el = this.segmentElement(seg);
    } else {
      this.place(el, seg);
    }
    const lane = this.lanes.get(seg.label);
    const row = isModel(seg) ? lane.model : lane.annotation;
    if (el.parentElement !== row) row.appendChild(el);
    if (this.selected === seg.id) this.o.onSelect?.(this.segments.get(seg.id));
  }

  remove(id) {
    this.segments.delete(id);
    this.elements.get(id)?.remove();
    this.elements.delete(id);
    if (this.selected === id) this.select(null);
  }

  /** Ensures a lane for `labelName` exists (to add its first segment). */
  ensureLane(labelName) {
    if (!this.lanes.has(labelName)) this.render([...this.lanes.keys(), labelName].sort());
  }

  /** Applies `change` to segment `seg` on screen, then asks the page to store it; undone if that fails. */
  async edit(seg, change) {
    const before = { ...seg };
    const next = { ...seg, ...change };
    if (next.start_frame > next.end_frame || next.start_frame < 0 || next.end_frame >= this.frames) return;
    this.place(this.elements.get(seg.id), next);
    try {
      const stored = await this.o.onEdit('update', before, change);
      if (stored) this.put(stored);
      else if (this.segments.has(seg.id)) this.place(this.elements.get(seg.id), this.segments.get(seg.id));
    } catch (e) {
      if (this.elements.has(seg.id)) this.place(this.elements.get(seg.id), this.segments.get(seg.id) || before);
      throw e;
    }
  }

  onPointerDown(e) {
    const el = e.target.closest('.seg');
    if (!el || !this.o.editable || e.button !== 0) return;
    const seg = this.segments.get(Number(el.dataset.id));
    if (!seg || isModel(seg)) return;
    const rect = el.getBoundingClientRect();
    const edge = Math.min(8, rect.width / 3);
    const mode = e.clientX - rect.left <= edge ? 'start' : rect.right - e.clientX <= edge ? 'end' : 'move';
    this.drag = { seg, el, mode, x: e.clientX, moved: false, next: { ...seg } };
    el.setPointerCapture(e.pointerId);
    this.select(seg.id);
    const move = (ev) => this.onPointerMove(ev);
    const up = async (ev) => {
      el.removeEventListener('pointermove', move);
      el.removeEventListener('pointerup', up);
      el.removeEventListener('pointercancel', up);
      const d = this.drag;
      this.drag = null;
      if (!d || !d.moved) return;
      // The click that ends a drag is not a seek; reset after it, should the browser send none.
      this.suppressClick = true;
      setTimeout(() => { this.suppressClick = false; }, 0);
      ev.preventDefault();
      const change = { start_frame: d.next.start_frame, end_frame: d.next.end_frame };
      this.place(el, d.seg);
      await this.edit(d.seg, change).catch(() => {});
    };
    el.addEventListener('pointermove', move);
    el.addEventListener('pointerup', up);
    el.addEventListener('pointercancel', up);
    e.preventDefault();
  }

  onPointerMove(e) {
    const d = this.drag;
    if (!d) return;
    const width = this.inner.getBoundingClientRect().width;
    const delta = Math.round(((e.clientX - d.x) / width) * this.frames);
    if (!d.moved && Math.abs(e.clientX - d.x) < 3) return;
    d.moved = true;
    const { start_frame: s, end_frame: t } = d.seg;
    const last = this.frames - 1;
    if (d.mode === 'move') {
      const shift = Math.min(last - t, Math.max(-s, delta));
      d.next = { ...d.seg, start_frame: s + shift, end_frame: t + shift };
    } else if (d.mode === 'start') {
      d.next = { ...d.seg, start_frame: Math.min(t, Math.max(0, s + delta)) };
    } else {
      d.next = { ...d.seg, end_frame: Math.max(s, Math.min(last, t + delta)) };
    }
    this.place(d.el, d.next);
  }

  async onKey(e) {
    const el = e.target.closest('.seg');
    const seg = el ? this.segments.get(Number(el.dataset.id)) : null;
    if (!seg) return;
    const editable = this.o.editable && !isModel(seg);
    const step = e.shiftKey ? Math.max(1, Math.round(this.o.fps)) : 1;
    const last = this.frames - 1;
    const playhead = Math.min(last, Math.max(0, this.o.playhead()));
    let change = null;
    switch (e.key) {
      case 'ArrowLeft':
      case 'ArrowRight': {
        if (!editable) return;
        const dir = e.key === 'ArrowLeft' ? -1 : 1;
        if (e.altKey) change = { end_frame: Math.min(last, Math.max(seg.start_frame, seg.end_frame + dir * step)) };
        else {
          const shift = Math.min(last - seg.end_frame, Math.max(-seg.start_frame, dir * step));
          change = { start_frame: seg.start_frame + shift, end_frame: seg.end_frame + shift };
        }
        break;
      }
      case 'Home':
        if (editable && playhead <= seg.end_frame) change = { start_frame: playhead };
        break;
      case 'End':
        if (editable && playhead >= seg.start_frame) change = { end_frame: playhead };
        break;
      case 's':
        if (editable) {
          e.preventDefault();
          await this.split(seg, playhead).catch(() => {});
        }
        return;
      case 'Delete':
      case 'Backspace':
        if (editable) {
          e.preventDefault();
          await this.delete(seg).catch(() => {});
        }
        return;
      case 'c':
        if (this.o.editable && isModel(seg)) {
          e.preventDefault();
          await this.copy(seg);
        }
        return;
      case 'Enter':
        e.preventDefault();
        this.o.onSeek(seg.start_frame, true);
        return;
      default:
        return;
    }
    e.preventDefault();
    if (change) await this.edit(seg, change).catch(() => {});
  }

  /** Splits `seg` so that the second part starts at `frame`. */
  async split(seg, frame) {
    if (frame <= seg.start_frame || frame > seg.end_frame) return false;
    const first = await this.o.onEdit('update', { ...seg }, { end_frame: frame - 1 });
    if (!first) return false;
    this.put(first);
    const second = await this.o.onEdit('create', null, { label: seg.label, start_frame: frame, end_frame: seg.end_frame, source: seg.source || 'annotation' });
    if (second) {
      this.put(second);
      this.select(second.id);
    }
    return true;
  }

  async delete(seg) {
    const gone = await this.o.onEdit('delete', { ...seg }, {});
    if (gone) this.remove(seg.id);
  }

  /** An annotation with the model segment's label and frames, to correct. */
  async copy(seg) {
    const created = await this.o.onEdit('create', null, { label: seg.label, start_frame: seg.start_frame, end_frame: seg.end_frame, source: 'annotation' });
    if (created) {
      this.put(created);
      this.select(created.id);
    }
  }
}
