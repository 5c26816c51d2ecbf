import { Redis } from 'ioredis';
import type { RedisClient } from './client.js';

/**
 * Coalesces the commands sent to one Redis connection during an event-loop
 * turn into one socket write: the first command of a turn corks the
 * connection's socket, and the turn's check phase (setImmediate) uncorks it,
 * so Node writes everything buffered with one writev.
 *
 * Under load the gateway reads many requests in one poll phase, each sending
 * its one EVALSHA: one write per turn instead of one per request saves a
 * system call (and the kernel's loopback work) per request, and Redis
 * answers the batch in as few reads. The wait is bounded by the rest of the
 * current turn — never a timer. ioredis's own auto-pipelining flushes on
 * process.nextTick, which runs after every I/O callback, so it batches
 * nothing here.
 *
 * Only a single connection (`url` or `sentinel`) is coalesced; a Cluster
 * client, whose commands go to several nodes' connections, writes as before.
 */
export class TurnCoalescedWrites {
  private corked: Redis['stream'] | undefined;

  constructor(private readonly client: RedisClient) {}

  /** Call right before sending a command: corks the connection until the end of this turn. */
  beforeSend(): void {
    if (this.corked !== undefined || !(this.client instanceof Redis) || this.client.status !== 'ready') return;
    const stream = this.client.stream;
    stream.cork();
    this.corked = stream;
    setImmediate(this.uncork);
  }

  private readonly uncork = (): void => {
    const stream = this.corked;
    this.corked = undefined;
    // A socket closed meanwhile fails its buffered commands itself; uncorking it is harmless.
    stream?.uncork();
  };
}
