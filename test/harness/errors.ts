/** Stable codes for harness failures, so a test can tell "binary missing" from "server died". */
export const HarnessErrorCode = {
  BinaryMissing: 'HARNESS_BINARY_MISSING',
  ExitedEarly: 'HARNESS_EXITED_EARLY',
  NotReady: 'HARNESS_NOT_READY',
  Unsupported: 'HARNESS_UNSUPPORTED',
} as const;
export type HarnessErrorCode = (typeof HarnessErrorCode)[keyof typeof HarnessErrorCode];

export class HarnessError extends Error {
  override readonly name = 'HarnessError';
  constructor(
    readonly code: HarnessErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
