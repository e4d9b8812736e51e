// Files behind the bearer: fetched once through the SDK and shown as blob: URLs.
import type { Backend } from "./backend.ts";

const urls = new Map<string, Promise<string>>();

export function blobUrl(backend: Backend, file: string, thumbnail = false): Promise<string> {
  const key = `${file}:${thumbnail ? "t" : "f"}`;
  let url = urls.get(key);
  if (!url) {
    url = backend.download(file, thumbnail).then((blob) => URL.createObjectURL(blob));
    url.catch(() => urls.delete(key));
    urls.set(key, url);
  }
  return url;
}

export async function saveFile(backend: Backend, file: string, name: string): Promise<void> {
  const a = document.createElement("a");
  a.href = await blobUrl(backend, file);
  a.download = name;
  a.click();
}

/** Records a voice note from the microphone until stop() is called. */
export class VoiceRecorder {
  private recorder: MediaRecorder | null = null;
  private chunks: Blob[] = [];
  private started = 0;
  private stream: MediaStream | null = null;

  get recording(): boolean {
    return this.recorder !== null;
  }

  async start(): Promise<void> {
    this.stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const mime = ["audio/webm;codecs=opus", "audio/webm", "audio/ogg;codecs=opus"].find((m) => MediaRecorder.isTypeSupported(m));
    this.recorder = new MediaRecorder(this.stream, mime ? { mimeType: mime } : undefined);
    this.chunks = [];
    this.recorder.addEventListener("dataavailable", (event) => this.chunks.push(event.data));
    this.recorder.start();
    this.started = performance.now();
  }

  stop(): Promise<{ blob: Blob; durationMs: number }> {
    const recorder = this.recorder!;
    return new Promise((resolve) => {
      recorder.addEventListener("stop", () => {
        const type = (recorder.mimeType || "audio/webm").split(";")[0];
        for (const track of this.stream?.getTracks() ?? []) track.stop();
        this.recorder = null;
        resolve({ blob: new Blob(this.chunks, { type }), durationMs: Math.round(performance.now() - this.started) });
      });
      recorder.stop();
    });
  }
}
