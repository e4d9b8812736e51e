// A small typed event emitter (no dependency on Node's EventEmitter, so the
// SDK runs unchanged in browsers).

export type Listener<T> = (value: T) => void;

export class Emitter<Events extends object> {
  private readonly listeners = new Map<keyof Events, Set<Listener<never>>>();

  /** Calls `listener` on every `event`; returns a function that stops it. */
  on<K extends keyof Events>(event: K, listener: Listener<Events[K]>): () => void {
    let set = this.listeners.get(event);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(listener as Listener<never>);
    return () => this.off(event, listener);
  }

  /** Calls `listener` on the next `event` only. */
  once<K extends keyof Events>(event: K, listener: Listener<Events[K]>): () => void {
    const stop = this.on(event, (value) => {
      stop();
      listener(value);
    });
    return stop;
  }

  off<K extends keyof Events>(event: K, listener: Listener<Events[K]>): void {
    this.listeners.get(event)?.delete(listener as Listener<never>);
  }

  /** Resolves with the next `event` whose value passes `match` (for tests and flows). */
  next<K extends keyof Events>(event: K, match: (value: Events[K]) => boolean = () => true): Promise<Events[K]> {
    return new Promise((resolve) => {
      const stop = this.on(event, (value) => {
        if (match(value)) {
          stop();
          resolve(value);
        }
      });
    });
  }

  /**
   * Calls the listeners of `event`. A listener that throws does not stop the
   * others, nor the SDK: its error is passed to `onListenerError`.
   */
  protected emit<K extends keyof Events>(event: K, value: Events[K]): void {
    const set = this.listeners.get(event);
    if (set === undefined) return;
    for (const listener of [...set]) {
      try {
        (listener as Listener<Events[K]>)(value);
      } catch (error) {
        this.onListenerError(error, String(event));
      }
    }
  }

  protected onListenerError(error: unknown, event: string): void {
    // The default: report it without breaking the caller.
    console.error(`sandcat: a "${event}" listener threw`, error);
  }
}
