// Video processors: twilio-video's `VideoProcessor` interface, so an app's
// own filters and @twilio/video-processors (background blur and
// replacement) work on Salon's tracks.
//
//   track.addProcessor(processor, {inputFrameBufferType, outputFrameBufferContextType})
//
//   source MediaStreamTrack ──▶ each frame ──▶ input buffer ──▶ processor.processFrame(input, output)
//                                                                              │ draws into
//   processedTrack ◀── output <canvas>.captureStream(0) + requestFrame() ◀─────┘
//
// The input buffer is what `inputFrameBufferType` asks for: an
// OffscreenCanvas (the default where it exists), a <canvas>, the <video>
// playing the source, or the VideoFrame itself. The output is a <canvas>
// whose context has been made with `outputFrameBufferContextType` ('2d' by
// default; 'bitmaprenderer' for @twilio/video-processors' WebGL2 pipeline),
// so the processor gets the same context back. A processor written for
// twilio-video 2.x before the output buffer existed returns its frame from
// processFrame instead; that frame is drawn into the output.
//
// Frames come from a MediaStreamTrackProcessor where the browser has one
// (one per source frame, as they arrive), else from the <video> at the
// track's frame rate. One frame is processed at a time: a slow processor
// drops frames, it does not queue them.
//
// The track decides what uses `processedTrack`: elements it is attached to
// and, for a published LocalVideoTrack, what is sent.
// Owns: the pump and its buffers. Must not: know about rooms or publishing.

import { Log } from './log.js';

const DEFAULT_FRAME_RATE = 24;
const INPUT_TYPES = ['video', 'canvas', 'offscreencanvas', 'videoframe'];

/**
 * Check a processor and its options as twilio-video does; throws an Error
 * naming the problem.
 * @returns {{inputFrameBufferType: string, outputFrameBufferContextType: string}}
 */
export function checkProcessor(processor, options) {
  if (!processor || typeof processor.processFrame !== 'function') {
    throw new Error('Received an invalid VideoProcessor from addProcessor.');
  }
  if (options !== undefined && options !== null && typeof options !== 'object') {
    throw new TypeError('options must be an object');
  }
  const hasOffscreen = typeof OffscreenCanvas !== 'undefined';
  let { inputFrameBufferType, outputFrameBufferContextType } = options || {};
  if (inputFrameBufferType === 'offscreencanvas' && !hasOffscreen) {
    throw new Error('OffscreenCanvas is not supported by this browser.');
  }
  if (inputFrameBufferType !== undefined && !INPUT_TYPES.includes(inputFrameBufferType)) {
    throw new Error(`Invalid inputFrameBufferType of ${inputFrameBufferType}`);
  }
  if (inputFrameBufferType === 'videoframe' && typeof VideoFrame === 'undefined') {
    throw new Error('VideoFrame is not supported by this browser.');
  }
  inputFrameBufferType = inputFrameBufferType || (hasOffscreen ? 'offscreencanvas' : 'canvas');
  outputFrameBufferContextType = outputFrameBufferContextType || '2d';
  return { inputFrameBufferType, outputFrameBufferContextType };
}

/** The processing of one source track's frames by one processor. */
export class FrameProcessing {
  /** @type {MediaStreamTrack} the processed frames, to attach and to send */
  processedTrack;
  #processor;
  #options;
  #source;
  #output;
  #outputContext;
  #input = null;
  #video = null;
  #stopped = false;
  #stopSource = () => {};
  #log;

  /**
   * @param {MediaStreamTrack} source
   * @param {{processFrame: Function}} processor checked by {@link checkProcessor}
   * @param {{inputFrameBufferType: string, outputFrameBufferContextType: string}} options
   * @param {Log} [log]
   */
  constructor(source, processor, options, log = new Log('VideoProcessor')) {
    this.#source = source;
    this.#processor = processor;
    this.#options = options;
    this.#log = log;
    const { width = 0, height = 0 } = source.getSettings ? source.getSettings() : {};
    this.#output = document.createElement('canvas');
    this.#output.width = width;
    this.#output.height = height;
    // Made now, with the asked type, so processFrame gets this context back.
    this.#outputContext = this.#output.getContext(options.outputFrameBufferContextType);
    if (!this.#outputContext) {
      throw new Error(`Cannot get outputFrameBufferContextType: ${options.outputFrameBufferContextType}.`);
    }
    if (options.inputFrameBufferType === 'offscreencanvas') this.#input = new OffscreenCanvas(width, height);
    if (options.inputFrameBufferType === 'canvas') {
      this.#input = document.createElement('canvas');
      this.#input.width = width;
      this.#input.height = height;
    }
    // Frame rate 0: a frame is captured when requestFrame() says so.
    this.processedTrack = this.#output.captureStream(0).getVideoTracks()[0];
    this.processedTrack.enabled = source.enabled;
    this.#start();
  }

  /** Stop processing; the processed track ends. Idempotent. */
  stop() {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#stopSource();
    if (this.#video) {
      this.#video.srcObject = null;
      this.#video = null;
    }
    this.processedTrack.stop();
  }

  #start() {
    const needsVideo = this.#options.inputFrameBufferType === 'video' || typeof MediaStreamTrackProcessor !== 'function';
    if (needsVideo) {
      this.#video = document.createElement('video');
      this.#video.muted = true;
      this.#video.playsInline = true;
      this.#video.srcObject = new MediaStream([this.#source]);
      this.#video.play().catch((error) => this.#log.warn('The video of the source track does not play:', error));
    }
    if (typeof MediaStreamTrackProcessor === 'function') this.#pumpFrames();
    else this.#pumpVideo();
  }

  /** Each frame of the source, as it comes (Chromium: insertable streams). */
  async #pumpFrames() {
    const reader = new MediaStreamTrackProcessor({ track: this.#source }).readable.getReader();
    this.#stopSource = () => reader.cancel().catch(() => {});
    for (;;) {
      let result;
      try {
        result = await reader.read();
      } catch {
        return; // canceled, or the source ended
      }
      if (result.done || this.#stopped) {
        result.value?.close();
        return;
      }
      const frame = result.value;
      try {
        await this.#process(frame, frame.displayWidth, frame.displayHeight);
      } finally {
        frame.close();
      }
    }
  }

  /** Frames drawn from the <video> at the source's frame rate (elsewhere). */
  #pumpVideo() {
    const { frameRate = DEFAULT_FRAME_RATE } = this.#source.getSettings ? this.#source.getSettings() : {};
    let timer = null;
    let busy = false;
    const tick = async () => {
      if (this.#stopped || busy) return;
      if (this.#source.readyState === 'ended') return this.stop();
      const video = this.#video;
      if (!video || video.readyState < 2 || !video.videoWidth) return;
      busy = true;
      try {
        await this.#process(video, video.videoWidth, video.videoHeight);
      } finally {
        busy = false;
      }
    };
    timer = setInterval(tick, 1000 / (frameRate || DEFAULT_FRAME_RATE));
    this.#stopSource = () => clearInterval(timer);
  }

  /**
   * One frame: fill the input buffer, call processFrame, publish the output.
   * @param {VideoFrame|HTMLVideoElement} frame
   */
  async #process(frame, width, height) {
    if (this.#stopped || !width || !height) return;
    // Resizing a canvas clears it: only when the size changed.
    if (this.#output.width !== width || this.#output.height !== height) {
      this.#output.width = width;
      this.#output.height = height;
    }
    let input;
    switch (this.#options.inputFrameBufferType) {
      case 'videoframe':
        input = frame instanceof HTMLVideoElement ? new VideoFrame(frame) : frame;
        break;
      case 'video':
        input = this.#video;
        break;
      default:
        if (this.#input.width !== width || this.#input.height !== height) {
          this.#input.width = width;
          this.#input.height = height;
        }
        this.#input.getContext('2d').drawImage(frame, 0, 0, width, height);
        input = this.#input;
    }
    let returned;
    try {
      returned = await this.#processor.processFrame(input, this.#output);
    } catch (error) {
      this.#log.debug('processFrame threw:', error);
      return;
    } finally {
      if (input !== frame && input instanceof VideoFrameClass()) input.close();
    }
    if (this.#stopped) return;
    // twilio-video before 2.16: the processor returned the processed frame.
    if (returned && returned !== this.#output && this.#outputContext instanceof CanvasRenderingContext2D) {
      try {
        this.#outputContext.drawImage(returned, 0, 0, width, height);
      } catch (error) {
        this.#log.debug('processFrame returned something that cannot be drawn:', error);
      }
    }
    this.processedTrack.requestFrame?.();
  }
}

function VideoFrameClass() {
  return typeof VideoFrame === 'function' ? VideoFrame : class Never {};
}
