// Admission of arriving event streams a few per turn of the event loop (issue 8: reconnect storms).
//
// Dashboard tabs reconnecting after a restart open hundreds of streams within a few milliseconds, and
// Node reads all of their requests in one poll phase. Run to the end there (validation, headers
// written, subscription), 500 of them held the loop for hundreds of milliseconds while every other
// request waited behind them. Queued here instead (a route-level onRequest hook, so after the app's
// authentication and before the rest), each turn of the loop takes only a few; whatever arrives
// meanwhile, a health check, a write, the replay's next page, gets its turn in between.

export class Admission {
  private readonly waiting: (() => void)[] = [];
  private turn: NodeJS.Immediate | null = null;

  /** `perTurn`: requests let through per turn of the loop; the rest wait, in arrival order. */
  constructor(private readonly perTurn: number) {}

  /** Calls `go` in a later turn of the loop, after those that asked before it. */
  admit(go: () => void): void {
    this.waiting.push(go);
    this.schedule();
  }

  private schedule(): void {
    if (this.turn !== null || this.waiting.length === 0) return;
    // setImmediate: after this turn's I/O, and one batch per turn (an immediate set from an
    // immediate runs in the next turn, after that turn's I/O).
    this.turn = setImmediate(() => {
      this.turn = null;
      for (const go of this.waiting.splice(0, this.perTurn)) go();
      this.schedule();
    });
  }
}
