import { defineConfig } from 'vitest/config';

/**
 * The end-to-end files run twice against one shared lab: with the orchestrator
 * on hawk (lab-hawk), then on calypso (lab-calypso). One lab per machine: the
 * files run one after another, and the two projects one after the other
 * (sequence.groupOrder), never at the same time.
 */
/**
 * Tested on hawk only, as they do not depend on which coordinator runs them:
 * the operator's terminal (signals through wrappers, the live view), and the
 * fleet operations that talk to the targets alone (their SSH from calypso is
 * what every deploy from calypso proves; a rollback runs no nixos-rebuild; a
 * reboot adds only commands on the targets).
 */
const HAWK_ONLY = [
  'test/e2e/interrupts.test.ts',
  'test/e2e/terminal.test.ts',
  'test/e2e/generations.test.ts',
  'test/e2e/exec.test.ts',
  'test/e2e/rollback.test.ts',
  'test/e2e/reboot.test.ts',
  'test/e2e/closure-diff.test.ts',
  // --goal build runs the deploy's own build, copy and pin stages: from calypso, every deploy there copies to hawk and pins over SSH.
  'test/e2e/prebuild.test.ts',
];

const lab = (coordinator: 'hawk' | 'calypso', groupOrder: number) => ({
  test: {
    name: `lab-${coordinator}`,
    include: ['test/e2e/**/*.test.ts'],
    exclude: coordinator === 'hawk' ? [] : HAWK_ONLY,
    env: { LAB_COORDINATOR: coordinator },
    fileParallelism: false,
    sequence: { groupOrder },
    testTimeout: 180_000,
    hookTimeout: 180_000,
    globalSetup: ['test/e2e/global-setup.ts'],
  },
});

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 20_000,
          // Beside lab-hawk, whose tests mostly wait on the lab: the whole run stays within CI's budget.
          sequence: { groupOrder: 1 },
        },
      },
      lab('hawk', 1),
      lab('calypso', 2),
    ],
  },
});
