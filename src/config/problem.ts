import type { ConfigProblem } from './types.js';

/**
 * One problem as one line, `FILE:LINE:COL message`, as `corral check` prints it.
 * (A module of its own: callers that only print problems need not load the parser.)
 *
 * @example
 * formatProblem({ file: 'corral.yaml', line: 3, col: 11, message: 'x' }); // 'corral.yaml:3:11 x'
 */
export function formatProblem(problem: ConfigProblem): string {
  return `${problem.file}:${problem.line}:${problem.col} ${problem.message}`;
}
