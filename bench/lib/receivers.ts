/**
 * What every worker that holds receivers (SSE streams, Socket.IO sockets) keeps and answers: the
 * message ids each receiver got, POST→delivery latency, and the loss check against what was sent.
 */
import { compare, encode, newHistogram } from './latency.js';

export interface Receiver {
  /** The thread whose messages it must receive (for the loss check). */
  tag: string;
  messageIds: number[];
}

export class Receivers {
  readonly all: Receiver[] = [];
  /** Events received (any receiver, tracked or not). */
  frames = 0;
  private tracking = false;
  private latency = newHistogram();
  private expected: Record<string, number[]> = {};

  /** An event arrived for `receiver` at `at`: a message (with its id and send time) or another event. */
  received(receiver: Receiver, at: number, message?: { id: number; sentAt: number | undefined }): void {
    this.frames++;
    if (!this.tracking || !message) return;
    receiver.messageIds.push(message.id);
    if (message.sentAt !== undefined) this.latency.recordValue(Math.max(1, Math.round((at - message.sentAt) * 1000)));
  }

  /** The worker commands they answer (see run.ts). */
  handlers() {
    return {
      frames: () => this.frames,
      /** Note message ids and latency from now on (or stop). */
      track: (args: { on: boolean }) => {
        this.tracking = args.on;
        this.latency = newHistogram();
        for (const receiver of this.all) receiver.messageIds = [];
        return true;
      },
      /** Start a new latency histogram (message ids keep accumulating, for the loss check). */
      resetLatency: () => {
        this.latency = newHistogram();
        return true;
      },
      /** What each thread's receivers must receive: the acknowledged message ids per thread. */
      expect: (args: { expected: Record<string, number[]> }) => {
        this.expected = args.expected;
        return true;
      },
      /** Latency so far, and lost/duplicated per receiver against the expected messages of its thread. */
      verify: () => {
        let lost = 0;
        let duplicated = 0;
        for (const receiver of this.all) {
          const result = compare(this.expected[receiver.tag] ?? [], receiver.messageIds);
          lost += result.lost;
          duplicated += result.duplicated;
        }
        return { lost, duplicated, latency: encode(this.latency) };
      },
      /** Whether every receiver has received everything expected (to wait for stragglers). */
      complete: () => this.all.every((receiver) => compare(this.expected[receiver.tag] ?? [], receiver.messageIds).lost === 0),
    };
  }
}
