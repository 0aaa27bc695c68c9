// Mocha's spec reporter, plus one plain closing line that CI tooling reads:
// "tests: N passed, N failed, N skipped".
'use strict';
const Mocha = require('mocha');

const { EVENT_RUN_END } = Mocha.Runner.constants;

class SummaryReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once(EVENT_RUN_END, () => {
      const { passes, failures, pending } = runner.stats ?? this.stats;
      // Printed after the spec reporter's own epilogue.
      process.nextTick(() => {
        console.log(`tests: ${passes} passed, ${failures} failed, ${pending} skipped`);
      });
    });
  }
}

module.exports = SummaryReporter;
