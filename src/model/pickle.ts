/**
 * A pickle stack machine that never executes anything. GLOBAL / STACK_GLOBAL produce an opaque PyGlobal;
 * REDUCE / NEWOBJ / BUILD on a global call a builder only if the caller allows that exact name (PyTorch's
 * tensor rebuild functions, OrderedDict); every other call becomes an inert PyCall record. Pickles can
 * carry code: `os.system` here is just a name in a list.
 */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}

/** The inert result of calling a callable dbt does not build (`func(*args)`, plus any BUILD state). */
export class PyCall {
  state: unknown = undefined;
  constructor(
    readonly func: unknown,
    readonly args: unknown[],
  ) {}
}

export class PickleError extends Error {}

export interface UnpickleOptions {
  /** Resolves BINPERSID / PERSID ids (PyTorch storages). */
  persistentLoad?: (pid: unknown) => unknown;
  /** Builders for allowed callables, by qualified name; called with the already-unpickled args. */
  builders?: ReadonlyMap<string, (args: unknown[]) => unknown>;
}

export interface UnpickleResult {
  value: unknown;
  /** Every global the pickle referenced, qualified, in first-seen order. */
  globals: string[];
}

const MARK = Symbol('mark');

/** Python's `pickletools`-level decoder for protocols 0–5 (no out-of-band buffers). */
export function unpickle(bytes: Uint8Array, opts: UnpickleOptions = {}): UnpickleResult {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: unknown[] = [];
  const memo = new Map<number, unknown>();
  const globals: string[] = [];
  let pos = 0;

  const need = (n: number) => {
    if (n < 0 || pos + n > buf.length) throw new PickleError(`truncated at byte ${pos} (needs ${n} more bytes)`);
  };
  const u8 = () => (need(1), buf[pos++]);
  const u16 = () => (need(2), (pos += 2), buf.readUInt16LE(pos - 2));
  const u32 = () => (need(4), (pos += 4), buf.readUInt32LE(pos - 4));
  const i32 = () => (need(4), (pos += 4), buf.readInt32LE(pos - 4));
  const u64 = () => {
    need(8);
    const v = buf.readBigUInt64LE(pos);
    pos += 8;
    if (v > BigInt(buf.length)) throw new PickleError(`length ${v} at byte ${pos - 8} exceeds the pickle's size`);
    return Number(v);
  };
  const take = (n: number) => (need(n), (pos += n), buf.subarray(pos - n, pos));
  const line = () => {
    const end = buf.indexOf(0x0a, pos);
    if (end < 0) throw new PickleError(`unterminated text line at byte ${pos}`);
    const s = buf.toString('latin1', pos, end);
    pos = end + 1;
    return s;
  };
  const pop = () => {
    if (!stack.length) throw new PickleError(`stack underflow at byte ${pos}`);
    const v = stack.pop();
    if (v === MARK) throw new PickleError(`unexpected MARK at byte ${pos}`);
    return v;
  };
  const top = () => {
    if (!stack.length || stack[stack.length - 1] === MARK) throw new PickleError(`stack underflow at byte ${pos}`);
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const i = stack.lastIndexOf(MARK);
    if (i < 0) throw new PickleError(`no MARK on the stack at byte ${pos}`);
    const items = stack.splice(i);
    items.shift();
    return items;
  };
  const memoGet = (i: number) => {
    if (!memo.has(i)) throw new PickleError(`memo entry ${i} does not exist (byte ${pos})`);
    return memo.get(i);
  };
  const global = (module: string, name: string) => {
    const q = `${module}.${name}`;
    if (!globals.includes(q)) globals.push(q);
    return new PyGlobal(module, name);
  };
  const call = (func: unknown, args: unknown): unknown => {
    const argv = Array.isArray(args) ? args : [args];
    if (func instanceof PyGlobal) {
      const builder = opts.builders?.get(func.qualified);
      if (builder) return builder(argv);
    }
    return new PyCall(func, argv);
  };
  const setItems = (target: unknown, items: unknown[]) => {
    if (items.length % 2) throw new PickleError(`odd number of items for SETITEMS at byte ${pos}`);
    if (target instanceof Map) for (let i = 0; i < items.length; i += 2) target.set(items[i], items[i + 1]);
    else if (target instanceof PyCall) {
      // Setting items on an opaque object: keep them as its state, never call __setitem__.
      const m = target.state instanceof Map ? target.state : (target.state = new Map());
      for (let i = 0; i < items.length; i += 2) m.set(items[i], items[i + 1]);
    } else throw new PickleError(`SETITEM on a non-dict at byte ${pos}`);
  };
  const appendItems = (target: unknown, items: unknown[]) => {
    if (Array.isArray(target)) target.push(...items);
    else if (target instanceof Set) for (const x of items) target.add(x);
    else if (target instanceof PyCall) target.args.push(...items);
    else throw new PickleError(`APPEND on a non-list at byte ${pos}`);
  };
  const decodeLong = (b: Uint8Array): number | bigint => {
    if (b.length === 0) return 0;
    // Little-endian two's complement; via hex so a huge LONG4 stays linear-time.
    let v = BigInt(`0x${Buffer.from(b).reverse().toString('hex')}`);
    if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  const pyStringLiteral = (s: string) => {
    const q = s[0];
    if ((q !== "'" && q !== '"') || s[s.length - 1] !== q) throw new PickleError(`bad STRING literal at byte ${pos}`);
    return s.slice(1, -1);
  };

  for (;;) {
    if (pos >= buf.length) throw new PickleError('pickle ended without STOP');
    const op = buf[pos++];
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) throw new PickleError('unsupported pickle protocol');
        break;
      case 0x95: // FRAME
        u64();
        break;
      case 0x2e: // STOP
        return { value: pop(), globals };
      case 0x28: // MARK
        stack.push(MARK);
        break;
      case 0x30: // POP
        if (stack.length && stack[stack.length - 1] === MARK) stack.pop();
        else pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4a: // BININT
        stack.push(i32());
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: // LONG1
        stack.push(decodeLong(take(u8())));
        break;
      case 0x8b: {
        // LONG4
        const n = i32();
        if (n < 0) throw new PickleError('negative LONG4 length');
        stack.push(decodeLong(take(n)));
        break;
      }
      case 0x49: {
        // INT (text)
        const s = line();
        stack.push(s === '01' ? true : s === '00' ? false : Number.parseInt(s, 10));
        break;
      }
      case 0x4c: // LONG (text)
        stack.push(Number.parseInt(line().replace(/L$/, ''), 10));
        break;
      case 0x47: // BINFLOAT (big-endian double)
        need(8);
        stack.push(buf.readDoubleBE(pos));
        pos += 8;
        break;
      case 0x46: // FLOAT (text)
        stack.push(Number.parseFloat(line()));
        break;
      case 0x58: // BINUNICODE
        stack.push(take(u32()).toString('utf8'));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(take(u8()).toString('utf8'));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(take(u64()).toString('utf8'));
        break;
      case 0x56: // UNICODE (raw-unicode-escape text)
        stack.push(line());
        break;
      case 0x53: // STRING
        stack.push(pyStringLiteral(line()));
        break;
      case 0x54: // BINSTRING
        stack.push(take(u32()).toString('latin1'));
        break;
      case 0x55: // SHORT_BINSTRING
        stack.push(take(u8()).toString('latin1'));
        break;
      case 0x42: // BINBYTES
        stack.push(Uint8Array.from(take(u32())));
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(Uint8Array.from(take(u8())));
        break;
      case 0x8e: // BINBYTES8
      case 0x96: // BYTEARRAY8
        stack.push(Uint8Array.from(take(u64())));
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push([]);
        break;
      case 0x8f: // EMPTY_SET
        stack.push(new Set());
        break;
      case 0x74: // TUPLE
        stack.push(popMark());
        break;
      case 0x85: // TUPLE1
        stack.push([pop()]);
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        stack.push([pop(), b]);
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        stack.push([pop(), b, c]);
        break;
      }
      case 0x6c: // LIST
        stack.push(popMark());
        break;
      case 0x64: {
        // DICT
        const items = popMark();
        const m = new Map();
        setItems(m, items);
        stack.push(m);
        break;
      }
      case 0x91: // FROZENSET
        stack.push(new Set(popMark()));
        break;
      case 0x61: {
        // APPEND
        const v = pop();
        appendItems(top(), [v]);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        appendItems(top(), items);
        break;
      }
      case 0x90: {
        // ADDITEMS
        const items = popMark();
        appendItems(top(), items);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x70: // PUT
        memo.set(Number.parseInt(line(), 10), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
        stack.push(memoGet(u8()));
        break;
      case 0x6a: // LONG_BINGET
        stack.push(memoGet(u32()));
        break;
      case 0x67: // GET
        stack.push(memoGet(Number.parseInt(line(), 10)));
        break;
      case 0x63: {
        // GLOBAL "module\nname\n"
        const module = line();
        stack.push(global(module, line()));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') throw new PickleError(`STACK_GLOBAL needs two strings (byte ${pos})`);
        stack.push(global(module, name));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        const func = pop();
        stack.push(call(func, args));
        break;
      }
      case 0x81: {
        // NEWOBJ
        const args = pop();
        const cls = pop();
        stack.push(call(cls, args));
        break;
      }
      case 0x92: {
        // NEWOBJ_EX
        pop(); // kwargs
        const args = pop();
        const cls = pop();
        stack.push(call(cls, args));
        break;
      }
      case 0x69: {
        // INST "module\nname\n" with MARKed args
        const module = line();
        const name = line();
        stack.push(call(global(module, name), popMark()));
        break;
      }
      case 0x6f: {
        // OBJ
        const items = popMark();
        if (!items.length) throw new PickleError(`OBJ without a class (byte ${pos})`);
        stack.push(call(items[0], items.slice(1)));
        break;
      }
      case 0x62: {
        // BUILD: only ever recorded, never applied through __setstate__
        const state = pop();
        const obj = top();
        if (obj instanceof PyCall) obj.state = state;
        break;
      }
      case 0x51: // BINPERSID
        stack.push(persistent(pop()));
        break;
      case 0x50: // PERSID
        stack.push(persistent(line()));
        break;
      case 0x82:
      case 0x83:
      case 0x84: // EXT1/2/4: the extension registry is code-defined; refuse.
        throw new PickleError('pickle uses the copyreg extension registry (EXT opcodes), which dbt does not support');
      case 0x97:
      case 0x98: // NEXT_BUFFER / READONLY_BUFFER
        throw new PickleError('pickle uses out-of-band buffers (protocol 5), which dbt does not support');
      default:
        throw new PickleError(`unknown opcode 0x${op.toString(16)} at byte ${pos - 1}`);
    }
  }

  function persistent(pid: unknown): unknown {
    if (!opts.persistentLoad) throw new PickleError('pickle has persistent ids but no loader was given');
    return opts.persistentLoad(pid);
  }
}
