// More of twilio-video's API as apps use it: background blur from
// @twilio/video-processors, a processor of the app's own, the preflight
// test, errors by code, and a Room handed to code that expects Node's
// EventEmitter. Compiled (see call.ts), never run.

import { EventEmitter as NodeEventEmitter } from 'events';
import { GaussianBlurBackgroundProcessor, isSupported as processorsSupported } from '@twilio/video-processors';
import {
  AddProcessorOptions,
  LocalVideoTrack,
  PreflightOptions,
  PreflightTest,
  PreflightTestReport,
  RemoteVideoTrack,
  Room,
  TwilioError,
  VideoProcessor,
  createLocalVideoTrack,
  runPreflight,
} from 'twilio-video';

// ---- video processors ------------------------------------------------------------

export async function blurBackground(track: LocalVideoTrack): Promise<void> {
  if (!processorsSupported) return;
  const blur = new GaussianBlurBackgroundProcessor({ assetsPath: '/processors/', blurFilterRadius: 10 });
  await blur.loadModel();
  const options: AddProcessorOptions = { inputFrameBufferType: 'videoframe', outputFrameBufferContextType: 'bitmaprenderer' };
  track.addProcessor(blur, options);
  setTimeout(() => {
    if (track.processor) track.removeProcessor(blur);
  }, 60_000);
}

class Grayscale implements VideoProcessor {
  constructor(private readonly percent: number) {}

  processFrame(input: OffscreenCanvas | HTMLCanvasElement | HTMLVideoElement | VideoFrame, output: HTMLCanvasElement): void {
    const context = output.getContext('2d');
    if (!context) return;
    context.filter = `grayscale(${this.percent}%)`;
    context.drawImage(input, 0, 0, output.width, output.height);
  }
}

export async function grayCamera(): Promise<MediaStreamTrack | null> {
  const track = await createLocalVideoTrack({ width: 640, height: 480 });
  track.addProcessor(new Grayscale(100));
  return track.processedTrack;
}

export function grayRemote(track: RemoteVideoTrack): HTMLMediaElement {
  track.addProcessor(new Grayscale(50), { inputFrameBufferType: 'canvas' });
  return track.attach();
}

// ---- preflight ---------------------------------------------------------------------

export function testConnection(token: string): Promise<PreflightTestReport> {
  const options: PreflightOptions = { duration: 5000 };
  const preflight: PreflightTest = runPreflight(token, options);
  return new Promise((resolve, reject) => {
    preflight.on('progress', (step: string) => console.log('preflight', step));
    preflight.on('completed', (report: PreflightTestReport) => {
      console.log(report.networkTiming.ice?.duration, report.stats.rtt?.average, report.selectedIceCandidatePairStats?.localCandidate.candidateType);
      for (const event of report.progressEvents) console.log(event.name, event.duration);
      resolve(report);
    });
    preflight.on('failed', (error: Error, report: PreflightTestReport) => {
      console.warn(report.testTiming.duration);
      reject(error);
    });
    setTimeout(() => preflight.stop(), 20_000);
  });
}

// ---- errors -------------------------------------------------------------------------

export function describe(error: TwilioError | Error): string {
  if ('code' in error) {
    switch (error.code) {
      case 20101: return 'bad token';
      case 53118: return 'room ended';
      default: return `${error.code}: ${error.message}`;
    }
  }
  return error.message;
}

// ---- a Room is a Node EventEmitter --------------------------------------------------

function countEvents(emitter: NodeEventEmitter): number {
  return emitter.eventNames().length;
}

export function roomEvents(room: Room): number {
  return countEvents(room);
}
