// A video: the anonymised video streamed in ranges (seek anywhere), its segment timeline, and for
// annotators the tools to correct it. Every change is saved at once with the version it was based on
// (If-Match); when someone else changed the segment meanwhile, both versions are shown side by side and
// nothing is dropped until the annotator decides.

import * as api from '../api.js';
import { clock, h, label, replace, toast, when } from '../dom.js';
import { KEYS, Timeline, isModel } from '../timeline.js';
import { steps } from './worklist.js';

const READY = ['frames_extracted', 'predicted', 'validated'];

function segmentBody(seg) {
  return { label: seg.label, start_frame: seg.start_frame, end_frame: seg.end_frame, source: seg.source ?? null, model_version_id: seg.model_version_id ?? null };
}

function describe(seg, fps) {
  if (!seg) return 'deleted';
  return `${label(seg.label)}, frames ${seg.start_frame}–${seg.end_frame} (${clock(seg.start_frame / fps)}–${clock((seg.end_frame + 1) / fps)})`;
}

export async function render(main, [id]) {
  const video = await api.get(`/api/v1/videos/${id}`);
  const fps = video.metadata.fps || 25;
  const frameCount = video.metadata.frame_count || Math.round((video.metadata.duration_s || 0) * fps);
  const info = h('dl', { class: 'facts' },
    h('dt', {}, 'State'), h('dd', { id: 'video-state' }, steps('video', video.state), ' ', label(video.state), video.state_detail ? ` — ${video.state_detail}` : ''),
    h('dt', {}, 'Center'), h('dd', {}, label(video.center)),
    h('dt', {}, 'Processor'), h('dd', {}, label(video.processor || '–')),
    h('dt', {}, 'Length'), h('dd', {}, `${clock(frameCount / fps)} · ${frameCount} frames at ${fps} fps`),
    h('dt', {}, 'Examination'), h('dd', {}, video.patient_examination_id
      ? (api.can('read_clinical') ? h('a', { href: `#/examinations/${video.patient_examination_id}` }, `Examination ${video.patient_examination_id}`) : `Examination ${video.patient_examination_id}`)
      : 'not linked'),
    h('dt', {}, 'Received'), h('dd', {}, when(video.created_at)));
  const head = h('div', { class: 'title-row' }, h('h1', {}, `Video ${video.id}`), h('a', { href: '#/', class: 'button link' }, '← Worklist'));

  if (!video.anonymised_key || !READY.includes(video.state)) {
    replace(main, h('section', { class: 'page', id: 'video-page' }, head, info,
      h('p', { class: 'notice', id: 'not-ready' }, 'The anonymised video and its frames are not ready yet; this page updates when they are.')));
    const timer = setInterval(async () => {
      const v = await api.get(`/api/v1/videos/${id}`).catch(() => null);
      if (v && v.state !== video.state) {
        clearInterval(timer);
        render(main, [id]);
      }
    }, 3000);
    return () => clearInterval(timer);
  }

  const version = video.anonymised_key.replace(/\.mp4$/, '').split('/').pop();
  const [segments, labelPage] = await Promise.all([
    api.get(`/api/v1/videos/${id}/segments`),
    api.get('/api/v1/terminology/label?per_page=500'),
  ]);
  const labelNames = new Map(labelPage.items.map((l) => [l.name, l.name_en || label(l.name)]));
  const editable = api.can('write_labels');

  const player = h('video', { id: 'player', controls: true, preload: 'metadata', src: `/api/v1/videos/${id}/anonymised?v=${version}` });
  const position = h('span', { id: 'position', class: 'mono' }, 'frame 0 · 0:00.0');
  const dialogBox = h('div', { id: 'conflict-box' });
  const selection = h('span', { id: 'selection', class: 'muted' }, 'No segment selected.');
  const chosen = h('select', { id: 'new-label', 'aria-label': 'Label of new segments' },
    [...labelNames].sort((a, b) => a[1].localeCompare(b[1])).map(([name, text]) => h('option', { value: name }, text)));
  const firstLane = [...new Set(segments.map((s) => s.label))].sort()[0];
  if (firstLane) chosen.value = firstLane;

  const frameNow = () => Math.min(frameCount - 1, Math.max(0, Math.floor(player.currentTime * fps + 1e-3)));
  const seek = (frame, play = false) => {
    player.currentTime = Math.min(frameCount - 1, Math.max(0, frame)) / fps + 0.001;
    timeline.setPlayhead(frame);
    if (play) player.play().catch(() => {});
  };

  // Conflicts: theirs beside mine; the pending change stays until the annotator chooses.
  function conflict(mine, theirs, op) {
    return new Promise((resolve) => {
      const done = (value) => {
        replace(dialogBox);
        resolve(value);
      };
      const keepMine = async () => {
        try {
          if (op === 'delete') {
            if (theirs) await api.request('DELETE', `/api/v1/segments/${theirs.id}`, { ifMatch: theirs.version });
            done({ deleted: true });
          } else if (theirs) {
            const r = await api.request('PUT', `/api/v1/segments/${theirs.id}`, { body: segmentBody(mine), ifMatch: theirs.version });
            done(r.body);
          } else {
            const r = await api.request('POST', `/api/v1/videos/${id}/segments`, { body: segmentBody(mine) });
            done({ replacement: r.body });
          }
        } catch (e) {
          toast(`Not saved: ${e.message}`, 'error');
          if (e.status === 412) done(await refetchConflict(mine, op));
        }
      };
      const keepBoth = async () => {
        try {
          const r = await api.request('POST', `/api/v1/videos/${id}/segments`, { body: segmentBody({ ...mine, source: 'annotation', model_version_id: null }) });
          done({ theirs, added: r.body });
        } catch (e) {
          toast(`Not saved: ${e.message}`, 'error');
        }
      };
      replace(dialogBox, h('div', { class: 'dialog', id: 'conflict', role: 'alertdialog', 'aria-labelledby': 'conflict-title' },
        h('h2', { id: 'conflict-title' }, 'Someone else changed this segment'),
        h('p', {}, 'Your change was not saved, because the segment changed after you loaded it. Both versions:'),
        h('table', { class: 'compare' },
          h('tr', {}, h('th', {}, `Theirs${theirs ? ` (version ${theirs.version}, ${when(theirs.updated_at)})` : ''}`), h('th', {}, 'Yours (not saved)')),
          h('tr', {}, h('td', { id: 'conflict-theirs' }, describe(theirs, fps)), h('td', { id: 'conflict-mine' }, op === 'delete' ? 'deleted' : describe(mine, fps)))),
        h('div', { class: 'actions' },
          h('button', { type: 'button', id: 'keep-theirs', onclick: () => done({ theirs }) }, 'Keep theirs'),
          h('button', { type: 'button', id: 'keep-mine', class: 'primary', onclick: keepMine }, op === 'delete' ? 'Delete it anyway' : 'Save mine over theirs'),
          op !== 'delete' ? h('button', { type: 'button', id: 'keep-both', onclick: keepBoth }, 'Keep both (mine as a new segment)') : null)));
      dialogBox.querySelector('#keep-mine').focus();
    });
  }

  async function refetchConflict(mine, op) {
    let theirs = null;
    try {
      theirs = await api.get(`/api/v1/segments/${mine.id}`);
    } catch (e) {
      if (e.status !== 404) throw e;
    }
    return conflict(mine, theirs, op);
  }

  /** Applies what the conflict dialog decided to the timeline; answers the segment now stored under the id. */
  function settle(outcome, original) {
    if (outcome.added) timeline.put(outcome.added);
    if (outcome.replacement) {
      timeline.remove(original.id);
      timeline.put(outcome.replacement);
      return null;
    }
    if (outcome.deleted) return null;
    if ('theirs' in outcome) {
      if (outcome.theirs) return outcome.theirs;
      timeline.remove(original.id);
      return null;
    }
    return outcome;
  }

  async function onEdit(op, seg, change) {
    try {
      if (op === 'create') {
        timeline.ensureLane(change.label);
        return (await api.request('POST', `/api/v1/videos/${id}/segments`, { body: change })).body;
      }
      if (op === 'update') {
        const mine = { ...seg, ...change };
        try {
          return (await api.request('PUT', `/api/v1/segments/${seg.id}`, { body: segmentBody(mine), ifMatch: seg.version })).body;
        } catch (e) {
          if (e.status !== 412 && e.status !== 404) throw e;
          return settle(await refetchConflict(mine, op), seg);
        }
      }
      if (op === 'delete') {
        try {
          await api.request('DELETE', `/api/v1/segments/${seg.id}`, { ifMatch: seg.version });
          return true;
        } catch (e) {
          if (e.status === 404) return true;
          if (e.status !== 412) throw e;
          const outcome = await refetchConflict(seg, op);
          if (outcome.deleted) return true;
          if (outcome.theirs) timeline.put(outcome.theirs);
          return false;
        }
      }
    } catch (e) {
      toast(`Not saved: ${e.message}`, 'error');
      throw e;
    }
    return null;
  }

  const holder = h('div', { id: 'timeline-holder' });
  const timeline = new Timeline(holder, {
    frameCount, fps, editable, labels: labelNames, onEdit,
    onSeek: seek,
    playhead: frameNow,
    onSelect: (seg) => replace(selection, seg ? `Selected: ${describe(seg, fps)} · ${isModel(seg) ? 'model' : 'annotation'} · version ${seg.version}` : 'No segment selected.'),
  });
  timeline.setSegments(segments);

  const act = (fn) => async () => {
    const seg = timeline.selectedSegment();
    if (!seg) {
      toast('Select a segment first.');
      return;
    }
    await fn(seg).catch(() => {});
  };
  const tools = editable
    ? h('div', { class: 'toolbar', role: 'toolbar', 'aria-label': 'Segment tools' },
      h('label', { for: 'new-label' }, 'Label '), chosen,
      h('button', { type: 'button', id: 'add-segment', onclick: () => timeline.add(chosen.value, frameNow()).catch(() => {}) }, 'Add at playhead'),
      h('button', { type: 'button', id: 'split-segment', onclick: act((s) => (isModel(s) ? Promise.resolve() : timeline.split(s, frameNow()))) }, 'Split at playhead'),
      h('button', { type: 'button', id: 'copy-segment', onclick: act((s) => (isModel(s) ? timeline.copy(s) : Promise.resolve())) }, 'Copy model segment'),
      h('button', { type: 'button', id: 'delete-segment', onclick: act((s) => (isModel(s) ? Promise.resolve() : timeline.delete(s))) }, 'Delete'))
    : h('p', { class: 'muted' }, 'Read only: your role does not edit segments.');
  const zoom = h('div', { class: 'toolbar zoom' },
    h('button', { type: 'button', id: 'zoom-out', 'aria-label': 'Zoom out', onclick: () => timeline.setZoom(timeline.zoom / 2) }, '−'),
    h('button', { type: 'button', id: 'zoom-in', 'aria-label': 'Zoom in', onclick: () => timeline.setZoom(timeline.zoom * 2) }, '+'),
    h('button', { type: 'button', id: 'reload-segments', onclick: async () => timeline.setSegments(await api.get(`/api/v1/videos/${id}/segments`)) }, 'Reload segments'),
    position);

  replace(main, h('section', { class: 'page', id: 'video-page' }, head,
    h('div', { class: 'video-grid' }, h('div', { class: 'player' }, player), info),
    zoom, tools,
    h('div', { class: 'legend', 'aria-hidden': 'true' }, h('span', { class: 'model' }, 'model (AI), upper row of each label'), h('span', { class: 'annotation' }, 'annotation, lower row')),
    holder, selection, dialogBox,
    h('details', { class: 'keys' }, h('summary', {}, 'Keyboard'),
      h('dl', {}, KEYS.map(([k, what]) => [h('dt', {}, k), h('dd', {}, what)])),
      h('p', { class: 'muted' }, 'Mouse: click the timeline to seek; drag an annotation to move it, its edge to resize it; double-click an annotation row to add one. Model segments are the AI’s: copy one to correct it.'))));

  let raf = 0;
  const tick = () => {
    const f = frameNow();
    timeline.setPlayhead(f);
    replace(position, `frame ${f} · ${clock(player.currentTime)}`);
    raf = player.paused ? 0 : requestAnimationFrame(tick);
  };
  player.addEventListener('timeupdate', tick);
  player.addEventListener('seeked', tick);
  player.addEventListener('play', () => { if (!raf) raf = requestAnimationFrame(tick); });
  const onKey = (e) => {
    if (e.target.closest('input, select, textarea, video, button')) return;
    if (e.key === ' ' && e.target.closest('#timeline')) {
      e.preventDefault();
      if (player.paused) player.play().catch(() => {});
      else player.pause();
    } else if (e.key === 'a' && editable && !e.ctrlKey && !e.metaKey) {
      e.preventDefault();
      timeline.add(chosen.value, frameNow()).catch(() => {});
    }
  };
  document.addEventListener('keydown', onKey);
  return () => {
    cancelAnimationFrame(raf);
    document.removeEventListener('keydown', onKey);
    player.pause();
    player.removeAttribute('src');
    player.load();
  };
}
