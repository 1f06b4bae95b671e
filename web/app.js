// Salon's demo app: the Twilio Video tutorial's page, grown up. It uses only
// the SDK's twilio-video API (connect, tracks, participants, events).
//
//   load ──▶ camera + microphone preview (one permission prompt)
//   Join ──▶ POST /create-token ──▶ (preview ready) ──▶ connect(token, {name, tracks}) ──▶ the grid
//   Leave ─▶ room.disconnect() ──▶ back to the lobby, preview still on

import { LocalVideoTrack, connect, createLocalAudioTrack, createLocalTracks, createLocalVideoTrack } from '/sdk/salon-video.js';

const $ = (id) => document.getElementById(id);
const ui = {
  form: $('join-form'),
  room: $('room-name-input'),
  identity: $('identity-input'),
  join: $('join-button'),
  leave: $('leave-button'),
  mic: $('mic-button'),
  camera: $('camera-button'),
  screen: $('screen-button'),
  grid: $('grid'),
  local: $('local-media-container'),
  remote: $('remote-media-container'),
  roomInfo: document.querySelector('.room-info'),
  roomTitle: $('room-title'),
  count: $('participant-count'),
  copyLink: $('copy-link'),
  connection: $('connection-state'),
  banners: $('banners'),
  template: $('tile-template'),
};

/** The call's state. Tracks outlive rooms: the preview stays on between calls. */
const state = {
  /** @type {import('/sdk/salon-video.js').Room|null} */
  room: null,
  audio: null,
  video: null,
  screen: null,
  identity: '',
  /** Tiles by key: participant SID, or `${sid}:${trackSid}` for a screen. */
  tiles: new Map(),
};

// For the curious (and the e2e tests): the room and what happened in it.
window.salonDemo = {
  get room() { return state.room; },
  events: [],
};
const note = (...parts) => window.salonDemo.events.push(parts.join(' '));

// ---- starting up -------------------------------------------------------------

const params = new URLSearchParams(location.search);
ui.room.value = params.get('room') || localStorage.getItem('salon.room') || '';
// The name is kept per tab (sessionStorage): a second tab must not join
// under the first one's name, which would disconnect the first (53205).
ui.identity.value = params.get('name') || sessionStorage.getItem('salon.name') || '';
(ui.room.value ? ui.identity : ui.room).focus();
setInitials(ui.local, ui.identity.value || 'You');
ui.identity.addEventListener('input', () => setInitials(ui.local, ui.identity.value || 'You'));

if (!navigator.mediaDevices || typeof navigator.mediaDevices.getDisplayMedia !== 'function') ui.screen.hidden = true;

// Join waits for this: clicked before the camera and microphone are ready
// (a fast click, a slow permission prompt), the call would start with
// nothing to publish.
const preview = startPreview();
new ResizeObserver(layout).observe(ui.grid);
window.addEventListener('resize', layout);
layout();

async function startPreview() {
  try {
    const tracks = await createLocalTracks({
      audio: { name: 'microphone' },
      video: { name: 'camera', width: { ideal: 640 }, height: { ideal: 360 } },
    });
    for (const track of tracks) useTrack(track);
  } catch (error) {
    // One of the two may still work: try each alone, then say what is missing.
    const [audio, video] = await Promise.allSettled([
      createLocalAudioTrack({ name: 'microphone' }),
      createLocalVideoTrack({ name: 'camera', width: { ideal: 640 }, height: { ideal: 360 } }),
    ]);
    if (audio.status === 'fulfilled') useTrack(audio.value);
    if (video.status === 'fulfilled') useTrack(video.value);
    const missing = [video.status === 'rejected' && 'camera', audio.status === 'rejected' && 'microphone'].filter(Boolean);
    const cause = (video.status === 'rejected' ? video.reason : audio.reason) || error;
    showMediaError(cause, missing);
  }
  refreshControls();
}

function useTrack(track) {
  if (track.kind === 'audio') {
    state.audio = track;
  } else {
    state.video = track;
    ui.local.prepend(track.attach());
  }
  track.on('stopped', () => {
    if (track.kind === 'audio' && state.audio === track) state.audio = null;
    if (track.kind === 'video' && state.video === track) state.video = null;
    refreshControls();
  });
}

// ---- joining and leaving -------------------------------------------------------

ui.form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const roomName = ui.room.value.trim();
  const identity = ui.identity.value.trim();
  if (!roomName || !identity) return;
  ui.join.disabled = true;
  ui.join.textContent = 'Joining…';
  clearBanners();
  try {
    const response = await fetch('/create-token', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ identity, roomName }),
    });
    const body = await response.json();
    if (!response.ok) throw Object.assign(new Error(body.message || `HTTP ${response.status}`), { code: body.code });
    await preview;
    const tracks = [state.audio, state.video].filter(Boolean);
    const room = await connect(body.token, {
      name: roomName,
      tracks,
      // Adaptive video: three simulcast layers, the server picking one per
      // viewer (the SDK sends one until the server says it selects layers);
      // tiles that are hidden or small ask for less (the SDK's auto mode).
      preferredVideoCodecs: [{ codec: 'VP8', simulcast: true }],
      bandwidthProfile: { video: { mode: 'grid', dominantSpeakerPriority: 'high' } },
      dominantSpeaker: true,
      networkQuality: { local: 1, remote: 1 },
    });
    localStorage.setItem('salon.room', roomName);
    sessionStorage.setItem('salon.name', identity);
    state.identity = identity;
    enter(room);
  } catch (error) {
    showError(error, { identity, roomName });
  } finally {
    ui.join.disabled = false;
    ui.join.textContent = 'Join';
  }
});

ui.leave.addEventListener('click', () => state.room && state.room.disconnect());

function enter(room) {
  state.room = room;
  note('connected', room.name);
  document.body.classList.replace('lobby', 'in-call');
  ui.roomInfo.hidden = false;
  ui.roomTitle.textContent = room.name;
  ui.leave.disabled = false;
  ui.local.querySelector('.name').textContent = `${state.identity} (you)`;
  ui.local.dataset.identity = state.identity;
  setInitials(ui.local, state.identity);
  history.replaceState(null, '', `?room=${encodeURIComponent(room.name)}`);
  document.title = `${room.name} — Salon`;

  room.participants.forEach(addParticipant);
  room.on('participantConnected', (participant) => {
    note('participantConnected', participant.identity);
    addParticipant(participant);
  });
  room.on('participantDisconnected', (participant) => {
    note('participantDisconnected', participant.identity);
    removeParticipant(participant);
  });
  room.on('trackSubscribed', (track, publication, participant) => {
    note('trackSubscribed', participant.identity, track.kind);
    attachTrack(track, publication, participant);
  });
  room.on('trackUnsubscribed', (track, publication, participant) => {
    note('trackUnsubscribed', participant.identity, track.kind);
    detachTrack(track, publication, participant);
  });
  room.on('trackEnabled', (publication, participant) => {
    note('trackEnabled', participant.identity, publication.kind);
    refreshTile(participant);
  });
  room.on('trackDisabled', (publication, participant) => {
    note('trackDisabled', participant.identity, publication.kind);
    refreshTile(participant);
  });
  room.on('dominantSpeakerChanged', (participant) => {
    note('dominantSpeakerChanged', participant ? participant.identity : null);
    for (const [key, tile] of state.tiles) tile.classList.toggle('dominant', Boolean(participant) && key === participant.sid);
  });
  showNetworkQuality(room.localParticipant, ui.local);
  room.on('reconnecting', () => {
    ui.connection.hidden = false;
    ui.connection.textContent = 'Reconnecting…';
  });
  room.on('reconnected', () => {
    ui.connection.hidden = true;
  });
  room.on('disconnected', (_room, error) => {
    note('disconnected', error ? error.code : 'left');
    leave(error);
  });
  refreshControls();
  updateCount();
}

function leave(error) {
  stopScreenShare();
  for (const tile of state.tiles.values()) tile.remove();
  state.tiles.clear();
  state.room = null;
  document.body.classList.replace('in-call', 'lobby');
  ui.roomInfo.hidden = true;
  ui.connection.hidden = true;
  ui.leave.disabled = true;
  ui.local.querySelector('.name').textContent = 'You';
  document.title = 'Salon — video rooms';
  if (error) showError(error, { identity: state.identity, roomName: ui.room.value });
  refreshControls();
  layout();
}

// ---- participants and their tiles ------------------------------------------------

function addParticipant(participant) {
  showNetworkQuality(participant, tileFor(participant.sid, participant.identity));
  participant.tracks.forEach((publication) => {
    if (publication.track) attachTrack(publication.track, publication, participant);
  });
  refreshTile(participant);
  updateCount();
}

function removeParticipant(participant) {
  for (const [key, tile] of state.tiles) {
    if (key === participant.sid || key.startsWith(`${participant.sid}:`)) {
      tile.remove();
      state.tiles.delete(key);
    }
  }
  updateCount();
  layout();
}

function tileFor(key, identity, { screen = false } = {}) {
  let tile = state.tiles.get(key);
  if (tile) return tile;
  tile = ui.template.content.firstElementChild.cloneNode(true);
  tile.dataset.identity = identity;
  tile.classList.toggle('screen', screen);
  tile.classList.add('video-off');
  tile.querySelector('.name').textContent = screen ? `${identity} — screen` : identity;
  setInitials(tile, identity);
  ui.remote.appendChild(tile);
  state.tiles.set(key, tile);
  layout();
  return tile;
}

/** A participant's first video track is their camera; any other is a screen. */
function isScreen(publication, participant) {
  if (publication.kind !== 'video') return false;
  if (publication.trackName === 'screen') return true;
  const cameraTile = state.tiles.get(participant.sid);
  const shown = cameraTile && cameraTile.querySelector('video');
  return Boolean(shown && shown.dataset.track !== publication.trackSid);
}

function attachTrack(track, publication, participant) {
  if (track.kind === 'data') return;
  const screen = isScreen(publication, participant);
  const tile = screen
    ? tileFor(`${participant.sid}:${publication.trackSid}`, participant.identity, { screen: true })
    : tileFor(participant.sid, participant.identity);
  const element = track.attach();
  element.dataset.track = publication.trackSid;
  tile.prepend(element);
  if (track.kind === 'audio') watchSpeaking(track, tile);
  refreshTile(participant);
}

function detachTrack(track, publication, participant) {
  if (track.kind === 'data') return;
  for (const element of track.detach()) element.remove();
  const screenKey = `${participant.sid}:${publication.trackSid}`;
  if (state.tiles.has(screenKey)) {
    state.tiles.get(screenKey).remove();
    state.tiles.delete(screenKey);
    layout();
  }
  refreshTile(participant);
}

/** Network bars (0–5) on a tile, from the participant's networkQualityLevel. */
function showNetworkQuality(participant, tile) {
  const bars = tile.querySelector('.network');
  if (!bars) return;
  const show = (level) => {
    bars.dataset.level = level === null ? '' : String(level);
    bars.title = level === null ? 'Network quality: unknown' : `Network quality: ${level} of 5`;
  };
  show(participant.networkQualityLevel);
  participant.on('networkQualityLevelChanged', show);
}

/** Show camera-off and mic-off on a participant's tile. */
function refreshTile(participant) {
  const tile = state.tiles.get(participant.sid);
  if (!tile) return;
  const camera = [...participant.videoTracks.values()].find((p) => !state.tiles.has(`${participant.sid}:${p.trackSid}`));
  const mic = [...participant.audioTracks.values()][0];
  tile.classList.toggle('video-off', !camera || !camera.isSubscribed || !camera.isTrackEnabled);
  tile.classList.toggle('mic-off', !mic || !mic.isTrackEnabled);
  for (const [key, screenTile] of state.tiles) {
    if (!key.startsWith(`${participant.sid}:`)) continue;
    const publication = participant.tracks.get(key.split(':')[1]);
    screenTile.classList.toggle('video-off', !publication || !publication.isTrackEnabled);
  }
}

function updateCount() {
  const n = state.room ? state.room.participants.size + 1 : 1;
  ui.count.textContent = `${n} ${n === 1 ? 'person' : 'people'}`;
  ui.count.dataset.count = String(n);
}

function setInitials(tile, name) {
  const initials = name.trim().split(/\s+/).slice(0, 2).map((w) => [...w][0] || '').join('').toUpperCase();
  tile.querySelector('.avatar').dataset.initials = initials || '?';
}

/** Outline a tile while its audio is loud enough to be speech. */
function watchSpeaking(track, tile) {
  const AudioContext = window.AudioContext || window.webkitAudioContext;
  if (!AudioContext) return;
  let context;
  try {
    context = new AudioContext();
    const source = context.createMediaStreamSource(new MediaStream([track.mediaStreamTrack]));
    const analyser = context.createAnalyser();
    analyser.fftSize = 512;
    source.connect(analyser);
    const samples = new Uint8Array(analyser.fftSize);
    const timer = setInterval(() => {
      if (track.mediaStreamTrack.readyState === 'ended' || !tile.isConnected) {
        clearInterval(timer);
        context.close();
        return;
      }
      analyser.getByteTimeDomainData(samples);
      let peak = 0;
      for (const s of samples) peak = Math.max(peak, Math.abs(s - 128));
      tile.classList.toggle('speaking', track.isEnabled && peak > 24);
    }, 200);
  } catch {
    if (context) context.close();
  }
}

/** Size tiles so that all of them fit the stage at 16:9, as large as possible. */
function layout() {
  if (document.body.classList.contains('lobby')) {
    ui.grid.style.removeProperty('--tile-w');
    return;
  }
  const tiles = ui.grid.querySelectorAll('.tile').length;
  const gap = 12;
  const { width, height } = ui.grid.getBoundingClientRect();
  if (!width || !height) return;
  let best = 0;
  for (let cols = 1; cols <= tiles; cols++) {
    const rows = Math.ceil(tiles / cols);
    const w = Math.min((width - gap * (cols - 1)) / cols, ((height - gap * (rows - 1)) / rows) * (16 / 9));
    best = Math.max(best, w);
  }
  ui.grid.style.setProperty('--tile-w', `${Math.floor(best)}px`);
  ui.grid.dataset.count = String(tiles);
}

// ---- controls --------------------------------------------------------------------

ui.mic.addEventListener('click', () => toggle('audio'));
ui.camera.addEventListener('click', () => toggle('video'));
ui.screen.addEventListener('click', () => (state.screen ? stopScreenShare() : startScreenShare()));
ui.copyLink.addEventListener('click', async () => {
  const link = `${location.origin}/?room=${encodeURIComponent(state.room ? state.room.name : ui.room.value)}`;
  try {
    await navigator.clipboard.writeText(link);
    showBanner('Invite link copied.', { kind: 'info', timeout: 2500 });
  } catch {
    showBanner(`Share this link: ${link}`, { kind: 'info' });
  }
});
document.addEventListener('keydown', (event) => {
  if (event.target instanceof HTMLInputElement || event.metaKey || event.ctrlKey || event.altKey) return;
  if (event.key === 'm' || event.key === 'M') toggle('audio');
  if (event.key === 'v' || event.key === 'V') toggle('video');
});

async function toggle(kind) {
  const track = kind === 'audio' ? state.audio : state.video;
  if (track) {
    track.enable(!track.isEnabled);
    refreshControls();
    return;
  }
  // No device yet (refused, or missing): ask again.
  try {
    const created = kind === 'audio'
      ? await createLocalAudioTrack({ name: 'microphone' })
      : await createLocalVideoTrack({ name: 'camera', width: { ideal: 640 }, height: { ideal: 360 } });
    useTrack(created);
    if (state.room) await state.room.localParticipant.publishTrack(created);
  } catch (error) {
    showMediaError(error, [kind === 'audio' ? 'microphone' : 'camera']);
  }
  refreshControls();
}

async function startScreenShare() {
  if (!state.room) return;
  let stream;
  try {
    stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: 15 }, audio: false });
  } catch (error) {
    if (error.name !== 'NotAllowedError') showBanner(`Screen sharing failed: ${error.message}`);
    return;
  }
  const track = new LocalVideoTrack(stream.getVideoTracks()[0], { name: 'screen' });
  state.screen = track;
  // The browser's own "Stop sharing" button ends the track.
  track.on('stopped', () => stopScreenShare());
  const tile = tileFor('local:screen', state.identity, { screen: true });
  tile.classList.remove('video-off');
  tile.querySelector('.name').textContent = 'Your screen';
  tile.prepend(track.attach());
  refreshControls();
  try {
    await state.room.localParticipant.publishTrack(track);
  } catch (error) {
    showError(error, {});
    stopScreenShare();
  }
}

function stopScreenShare() {
  const track = state.screen;
  if (!track) return;
  state.screen = null;
  if (state.room) state.room.localParticipant.unpublishTrack(track);
  track.stop();
  track.detach().forEach((el) => el.remove());
  const tile = state.tiles.get('local:screen');
  if (tile) {
    tile.remove();
    state.tiles.delete('local:screen');
  }
  refreshControls();
  layout();
}

function refreshControls() {
  const set = (button, on, available, what) => {
    button.setAttribute('aria-pressed', String(on));
    button.classList.toggle('unavailable', !available);
    button.title = !available ? `No ${what}: click to try again` : `Turn ${what} ${on ? 'off' : 'on'} (${what === 'microphone' ? 'M' : 'V'})`;
  };
  set(ui.mic, Boolean(state.audio && state.audio.isEnabled), Boolean(state.audio), 'microphone');
  set(ui.camera, Boolean(state.video && state.video.isEnabled), Boolean(state.video), 'camera');
  ui.local.classList.toggle('video-off', !state.video || !state.video.isEnabled);
  ui.local.classList.toggle('mic-off', !state.audio || !state.audio.isEnabled);
  ui.screen.setAttribute('aria-pressed', String(Boolean(state.screen)));
  ui.screen.querySelector('.label').textContent = state.screen ? 'Stop sharing' : 'Share screen';
}

// ---- messages ----------------------------------------------------------------------

/** What to tell a person about an error, by Twilio code or DOMException name. */
function describe(error, { identity, roomName } = {}) {
  const code = error && error.code;
  switch (code) {
    case 53105: return ['This room is full.', `“${roomName}” has as many people as it allows. Try another room name.`];
    case 53205: return ['You joined from somewhere else.', `Someone joined “${roomName}” as “${identity}” from another tab or device, so this one left. Use a different name to be in the room twice.`];
    case 53118: return ['The room has ended.', 'It was closed on the server. Join again to start a new one.'];
    case 53106: return ['No such room.', error.message];
    case 53216: return ['Your time in the room ran out.', 'The room limits how long a participant may stay.'];
    case 53405: return ['The media connection failed.', 'Audio and video could not reach the server (is UDP to it blocked?).'];
    case 53000: case 53001: case 53002: case 53006:
      return ['Lost the connection to Salon.', 'Check that the server is running, then join again.'];
    case 53204: return ['You were away too long.', 'The connection came back after the room had let you go (or you were removed). Join again.'];
    default: break;
  }
  if (code >= 20101 && code <= 20107) return ['The server refused the access token.', error.message];
  if (code >= 53200 && code <= 53202) return ['That name cannot be used.', error.message];
  if (code >= 53100 && code <= 53102) return ['That room name cannot be used.', error.message];
  if (error instanceof TypeError && /fetch/i.test(error.message)) return ['Cannot reach Salon.', 'Is the server running?'];
  return ['Something went wrong.', error && error.message ? error.message : String(error)];
}

function showError(error, context) {
  console.warn('salon demo:', error);
  const [title, detail] = describe(error, context);
  showBanner(detail, { title, id: error && error.code ? `code-${error.code}` : undefined });
}

function showMediaError(error, missing) {
  const what = missing.join(' and ') || 'camera and microphone';
  const name = error && error.name;
  const detail = name === 'NotAllowedError'
    ? `Permission to use your ${what} was denied. Allow it in the browser's site settings (the icon in the address bar) and reload. You can still join and see and hear the others.`
    : name === 'NotFoundError' || name === 'OverconstrainedError'
      ? `No ${what} was found. Plug one in and click its button below.`
      : name === 'NotReadableError'
        ? `Your ${what} is in use by another application.`
        : `Your ${what} could not be started: ${error && error.message}`;
  showBanner(detail, { title: name === 'NotAllowedError' ? `No ${missing[0] || 'camera'} permission` : `No ${what}`, id: 'media' });
}

function showBanner(text, { title, kind = 'error', id, timeout } = {}) {
  if (id) ui.banners.querySelector(`[data-id="${id}"]`)?.remove();
  const banner = document.createElement('div');
  banner.className = `banner ${kind}`;
  banner.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  if (id) banner.dataset.id = id;
  const p = document.createElement('p');
  if (title) {
    const strong = document.createElement('strong');
    strong.textContent = title;
    p.append(strong);
  }
  p.append(text);
  const close = document.createElement('button');
  close.type = 'button';
  close.setAttribute('aria-label', 'Dismiss');
  close.textContent = '×';
  close.addEventListener('click', () => banner.remove());
  banner.append(p, close);
  ui.banners.append(banner);
  if (timeout) setTimeout(() => banner.remove(), timeout);
}

function clearBanners() {
  ui.banners.querySelectorAll('.banner').forEach((b) => b.remove());
}
