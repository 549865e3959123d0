/**
 * Aligned text tables for the operator commands (`ipvsadm -L` style), with
 * colour only when asked for (a TTY without NO_COLOR).
 */

export type Colour = 'green' | 'red' | 'yellow' | 'blue' | 'grey' | 'bold';

const ANSI: Record<Colour, [string, string]> = {
  green: ['\x1b[32m', '\x1b[39m'],
  red: ['\x1b[31m', '\x1b[39m'],
  yellow: ['\x1b[33m', '\x1b[39m'],
  blue: ['\x1b[34m', '\x1b[39m'],
  grey: ['\x1b[90m', '\x1b[39m'],
  bold: ['\x1b[1m', '\x1b[22m'],
};

export type Cell = string | number | { readonly text: string; readonly colour?: Colour };

export interface Column {
  readonly header: string;
  readonly align?: 'left' | 'right';
}

/** Whether to colour output: a TTY, NO_COLOR unset or empty (no-color.org), and a terminal that is not dumb. */
export function wantColour(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv): boolean {
  if (stream.isTTY !== true) return false;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  return env.TERM !== 'dumb';
}

export function paint(text: string, colour: Colour | undefined, enabled: boolean): string {
  if (!enabled || colour === undefined) return text;
  const [on, off] = ANSI[colour];
  return `${on}${text}${off}`;
}

function textOf(c: Cell): string {
  return typeof c === 'object' ? c.text : String(c);
}

/**
 * Renders rows under headers, columns separated by two spaces, numbers
 * right-aligned where the column says so, no trailing spaces.
 */
export function renderTable(columns: readonly Column[], rows: readonly (readonly Cell[])[], colour: boolean, indent = ''): string {
  const widths = columns.map((c, i) => Math.max(c.header.length, ...rows.map((r) => [...textOf(r[i] ?? '')].length)));
  const line = (cells: readonly Cell[], header: boolean): string => {
    const parts = columns.map((col, i) => {
      const cell = cells[i] ?? '';
      const text = textOf(cell);
      const pad = ' '.repeat((widths[i] as number) - [...text].length);
      const last = i === columns.length - 1;
      const painted = header ? paint(text, 'bold', colour) : paint(text, typeof cell === 'object' ? cell.colour : undefined, colour);
      if (col.align === 'right') return pad + painted;
      return last ? painted : painted + pad;
    });
    return indent + parts.join('  ').replace(/\s+$/, '');
  };
  return [line(columns.map((c) => c.header), true), ...rows.map((r) => line(r, false))].join('\n') + '\n';
}
