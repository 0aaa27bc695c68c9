/**
 * The replay log of a resumable channel session (docs/protocol.md, "Resume"): the frames
 * this end sent that the peer has not yet confirmed with a `recv`, in order, so that a
 * new connection can carry them again from the peer's count. Frames are numbered
 * implicitly (the n-th frame of the logical session), so the log costs no byte on the
 * wire; its size is counted in bytes (two per UTF-16 code unit of a text frame, the
 * length of a binary message: header and value's bytes) for the session's bound. A
 * binary message (protocol version 3: one `Uint8Array` value) is one frame.
 *
 * @module
 */
import type { Frame } from '../websocket/codec.js';

/** Frames sent and not yet confirmed by the peer, with their numbers and size. */
export class ReplayLog {
  /** The frames, oldest first; `#frames[#head]` is frame number `#first`. */
  #frames: Frame[] = [];
  #head = 0;
  /** The number of the oldest frame kept (= frames the peer confirmed). */
  #first = 0;
  /** Bytes of the frames kept (2 per UTF-16 code unit). */
  #bytes = 0;

  /** Frames logged in all (the number the next frame gets). */
  get end(): number {
    return this.#first + this.#frames.length - this.#head;
  }

  /** Frames the peer confirmed (the number of the oldest frame kept). */
  get confirmed(): number {
    return this.#first;
  }

  /** Bytes the kept frames take (2 per UTF-16 code unit; a binary message's length). */
  get bytes(): number {
    return this.#bytes;
  }

  /** Logs the next frame: text, or a binary message (kept as is: not to be modified). */
  push(frame: Frame): void {
    this.#frames.push(frame);
    this.#bytes += sizeOf(frame);
  }

  /**
   * The peer has received `count` frames in all: drops those. `false` if `count` is below
   * what it confirmed before or beyond the frames sent (a peer that lies).
   */
  confirm(count: number): boolean {
    if (count < this.#first || count > this.end) return false;
    const frames = this.#frames;
    let head = this.#head;
    const stop = head + (count - this.#first);
    let bytes = this.#bytes;
    while (head < stop) {
      bytes -= sizeOf(frames[head] as Frame);
      head++;
    }
    this.#bytes = bytes;
    this.#first = count;
    if (head === frames.length) {
      this.#frames = [];
      this.#head = 0;
    } else if (head > 1024 && head * 2 > frames.length) {
      this.#frames = frames.slice(head);
      this.#head = 0;
    } else {
      this.#head = head;
    }
    return true;
  }

  /** The frames kept, oldest first (after {@link ReplayLog.confirm} of the peer's count). */
  frames(): readonly Frame[] {
    return this.#head === 0 ? this.#frames : this.#frames.slice(this.#head);
  }
}

/** What a frame counts toward the bound: 2 bytes per UTF-16 code unit, or its bytes. */
function sizeOf(frame: Frame): number {
  return typeof frame === 'string' ? 2 * frame.length : frame.byteLength;
}
