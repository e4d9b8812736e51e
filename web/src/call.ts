// 1:1 calls: signalling through the SDK (CALL / CALL_EVENT), media over WebRTC, TURN from GET /calls/turn.
import type { CallEvent } from "./backend.ts";
import { duration, h, replace, toast } from "./dom.ts";
import type { State } from "./state.ts";

type Role = "caller" | "callee";

export class CallView {
  private id: string | null = null;
  private role: Role = "caller";
  private media: "audio" | "video" = "audio";
  private peer = "";
  private accepted = false;
  private pc: RTCPeerConnection | null = null;
  private stream: MediaStream | null = null;
  private remoteCandidates: RTCIceCandidateInit[] = [];
  private localCandidates: (RTCIceCandidateInit | null)[] = [];
  private active = false;
  private status = h("p", { class: "call-status", id: "call-status", "aria-live": "assertive" });
  private ice = h("output", { id: "call-ice", "aria-label": "Connection state" }, "new");
  private remote = h("video", { id: "remote-video", autoplay: true, playsinline: true, "aria-label": "Remote video" });
  private local = h("video", { id: "local-video", autoplay: true, playsinline: true, muted: true, "aria-label": "Your camera" });
  private buttons = h("div", { class: "row call-buttons" });

  constructor(private root: HTMLElement, private state: State) {
    replace(root, h("div", { class: "call-box" }, h("h2", { id: "call-title" }, "Call"), this.status, h("div", { class: "videos" }, this.remote, this.local), h("p", { class: "small" }, "Connection: ", this.ice), this.buttons));
  }

  private get backend() {
    return this.state.backend;
  }

  async start(peer: string, media: "audio" | "video"): Promise<void> {
    if (this.id) return toast("Already in a call");
    this.reset();
    this.role = "caller";
    this.peer = peer;
    this.media = media;
    this.show(`Calling ${this.state.name(peer)}…`, [["Cancel", "call-cancel", () => this.leave("cancel")]]);
    try {
      await this.prepare();
      const reply = await this.backend.callInvite(peer, media);
      this.id = reply.call;
      if (reply.state === "busy") {
        this.finish(`${this.state.name(peer)} is busy`);
      }
    } catch (err) {
      this.finish(err instanceof Error ? err.message : String(err));
    }
  }

  onEvent(event: CallEvent): void {
    if (event.action === "ring") {
      if (this.id) return; // busy here: the server answers busy for a second call
      this.reset();
      this.id = event.call;
      this.role = "callee";
      this.peer = event.from ?? "";
      this.media = event.media ?? "audio";
      this.show(`${this.state.name(this.peer)} is calling (${this.media})`, [
        ["Accept", "call-accept", () => void this.accept()],
        ["Decline", "call-decline", () => this.leave("reject")],
      ]);
      return;
    }
    if (event.call !== this.id) return;
    switch (event.action) {
      case "accepted":
        if (this.role === "caller") void this.offer();
        else if (!this.accepted) this.finish("Answered on another device");
        break;
      case "offer":
        void this.answer(event.sdp!);
        break;
      case "answer":
        void this.pc?.setRemoteDescription({ type: "answer", sdp: event.sdp! }).then(() => this.flushRemote());
        break;
      case "candidate": {
        const c = event.candidate!;
        const init: RTCIceCandidateInit = { candidate: c.candidate, sdpMid: c.sdp_mid ?? null, sdpMLineIndex: c.sdp_m_line_index ?? null };
        if (this.pc?.remoteDescription) void this.pc.addIceCandidate(init).catch(() => undefined);
        else this.remoteCandidates.push(init);
        break;
      }
      case "ended":
        this.finish(`Call ended: ${event.outcome}${event.duration_ms ? ` (${duration(event.duration_ms)})` : ""}`);
        break;
    }
  }

  private async accept(): Promise<void> {
    this.accepted = true;
    this.show("Connecting…", [["Hang up", "call-hangup", () => this.leave("hangup")]]);
    try {
      await this.prepare();
      await this.backend.callAction(this.id!, "accept");
      this.active = true;
      this.flushLocal();
    } catch (err) {
      this.finish(err instanceof Error ? err.message : String(err));
    }
  }

  private async prepare(): Promise<void> {
    const turn = await this.backend.turn().catch(() => null);
    const iceServers: RTCIceServer[] = turn ? [{ urls: turn.uris, username: turn.username, credential: turn.credential }] : [];
    this.stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: this.media === "video" });
    this.local.srcObject = this.stream;
    const pc = new RTCPeerConnection({ iceServers });
    this.pc = pc;
    for (const track of this.stream.getTracks()) pc.addTrack(track, this.stream);
    pc.addEventListener("track", (event) => {
      this.remote.srcObject = event.streams[0] ?? new MediaStream([event.track]);
    });
    pc.addEventListener("icecandidate", (event) => {
      this.localCandidates.push(event.candidate ? event.candidate.toJSON() : null);
      this.flushLocal();
    });
    pc.addEventListener("iceconnectionstatechange", () => {
      this.ice.textContent = pc.iceConnectionState;
      this.root.dataset.ice = pc.iceConnectionState;
      if (pc.iceConnectionState === "connected") {
        this.status.textContent = `In a call with ${this.state.name(this.peer)}`;
      }
    });
  }

  private flushLocal(): void {
    if (!this.active || !this.id) return;
    for (const c of this.localCandidates.splice(0)) {
      this.backend.callCandidate(this.id, c).catch(() => undefined);
    }
  }

  private async flushRemote(): Promise<void> {
    for (const c of this.remoteCandidates.splice(0)) await this.pc?.addIceCandidate(c).catch(() => undefined);
  }

  private async offer(): Promise<void> {
    this.active = true;
    this.show("Connecting…", [["Hang up", "call-hangup", () => this.leave("hangup")]]);
    const pc = this.pc!;
    await pc.setLocalDescription(await pc.createOffer());
    await this.backend.callSdp(this.id!, "offer", pc.localDescription!.sdp);
    this.flushLocal();
  }

  private async answer(sdp: string): Promise<void> {
    const pc = this.pc!;
    await pc.setRemoteDescription({ type: "offer", sdp });
    await this.flushRemote();
    await pc.setLocalDescription(await pc.createAnswer());
    await this.backend.callSdp(this.id!, "answer", pc.localDescription!.sdp);
    this.flushLocal();
  }

  private leave(action: "cancel" | "reject" | "hangup"): void {
    const id = this.id;
    if (id) this.backend.callAction(id, action).catch(() => undefined);
    this.finish("Call ended");
  }

  private show(text: string, buttons: [string, string, () => void][]): void {
    this.status.textContent = text;
    replace(this.buttons, buttons.map(([label, id, act]) => {
      const b = h("button", { type: "button", id, class: id === "call-accept" ? "primary" : "danger" }, label);
      b.addEventListener("click", act);
      return b;
    }));
    this.root.hidden = false;
    this.root.dataset.media = this.media;
    (this.buttons.firstElementChild as HTMLElement | null)?.focus();
  }

  private finish(text: string): void {
    this.reset();
    this.status.textContent = text;
    replace(this.buttons);
    setTimeout(() => {
      if (!this.id) this.root.hidden = true;
    }, 1500);
  }

  private reset(): void {
    this.pc?.close();
    for (const track of this.stream?.getTracks() ?? []) track.stop();
    this.pc = null;
    this.stream = null;
    this.id = null;
    this.accepted = false;
    this.active = false;
    this.remoteCandidates = [];
    this.localCandidates = [];
    this.remote.srcObject = null;
    this.local.srcObject = null;
    this.ice.textContent = "new";
    delete this.root.dataset.ice;
  }
}
