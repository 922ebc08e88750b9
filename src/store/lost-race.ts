/** Zero rows matched the expected state: another writer won. Nothing of the transaction is kept. */
export class LostRace extends Error {
  constructor(what: string) {
    super(`lost the race: ${what} changed under us`);
    this.name = 'LostRace';
  }
}
