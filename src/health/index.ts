/**
 * Health: active checks (tcp, http, send-expect), the server state machine
 * (HAProxy's rise/fall counter, warm-up, flap detection), slow start,
 * load-driven weights from agents, `track`, passive outlier ejection,
 * events and status files.
 *
 * The node wires it: it builds a `HealthMonitor` per config generation and
 * implements `HealthSink` to steer the balancer. Health imports only config.
 */
export {
  HealthMonitor,
  machineParams,
  fastInterval,
  agentTimeout,
  type HealthSink,
  type HealthMonitorOptions,
  type ServerHealthStatus,
  type AgentStatus,
} from './monitor.js';
export { HealthBus, type HealthEventMap, type ServerStateEvent, type ServerWeightEvent, type ServerFlappingEvent } from './events.js';
export type { HealthLog } from './log.js';
export {
  next,
  initialState,
  isTransitioning,
  admissionDueAt,
  requiredHold,
  describeTransition,
  type Health,
  type MachineParams,
  type MachineState,
  type MachineInput,
  type Step,
  type Transition,
} from './state-machine.js';
export { passed, formatReason, reasonDetail, type Reason, type ReasonCode, type CheckResult } from './reasons.js';
export { weightAt, slowStartFactor, effectiveWeight, agentWeight, nextRampChangeAt, MAX_WEIGHT, type WeightDirective, type WeightInputs } from './weight.js';
export { tcpCheck } from './tcp-check.js';
export { httpCheck, httpResponseReader, type HttpCheckOptions } from './http-check.js';
export { sendExpectCheck, type SendExpectOptions } from './send-expect-check.js';
export { probe, type ProbeTarget, type ProbeTls, type ProbeOutcome, type Reader } from './probe.js';
export { parseAgentReply, type AgentReply, type AgentParse } from './agent-reply.js';
export { pollAgentPort, runAgentCommand, type AgentPoll } from './agent.js';
export { OutlierCore, OutlierEjector, maxEjected, ejectionTime, type Outcome, type OutlierEvent, type OutlierStatus } from './outlier.js';
export { StatusFiles, writeAtomically, type StatusDocument, type StatusEntry } from './status-files.js';
