//! A small Python pickle virtual machine, enough for the pickles `torch.save` writes.
//!
//! Reference: CPython `Lib/pickle.py` and `Lib/pickletools.py` (opcode table, protocols 0–5).
//! Only the opcodes that `torch.save` emits for state dicts (protocol 2, plus the protocol-4
//! framing and `STACK_GLOBAL`/`MEMOIZE`) are implemented; anything else is refused with an
//! error naming the opcode and its offset. Nothing is executed: `GLOBAL` yields a name, and
//! `REDUCE`/`NEWOBJ` yield a [`Value::Call`] record that the torch layer interprets later.
//! The one exception is `collections.OrderedDict`, built as a plain [`Value::Dict`] so that
//! `SETITEMS` can fill it.
//!
//! Hostile input is bounded: nesting deeper than [`MAX_DEPTH`] is refused (so dropping a value
//! cannot overflow the stack), lengths are checked against the remaining bytes before use, and
//! containers are reference-counted so that memo references never copy data.

use std::collections::HashMap;
use std::rc::Rc;

/// How deeply values may nest; far more than any state dict needs (about 4).
pub(crate) const MAX_DEPTH: usize = 64;

/// A failure reason, wrapped into `Error::Checkpoint` by the caller.
pub(crate) type Reason = String;

/// A fully evaluated pickle value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An integer that fits in 64 bits.
    Int(i64),
    /// A wider integer, little-endian two's complement (as `LONG1` stores it).
    BigInt(Rc<[u8]>),
    /// A float.
    Float(f64),
    /// A text string.
    Str(Rc<str>),
    /// A byte string.
    Bytes(Rc<[u8]>),
    /// `module.name`, from `GLOBAL` or `STACK_GLOBAL`.
    Global(Rc<(String, String)>),
    /// A tuple.
    Tuple(Rc<Seq>),
    /// A list.
    List(Rc<Seq>),
    /// A dict (or `OrderedDict`), in insertion order; later duplicates win on lookup.
    Dict(Rc<Seq>),
    /// A persistent id (`BINPERSID`): the single element is the pickled id.
    PersId(Rc<Seq>),
    /// `callable(*args)` from `REDUCE`/`NEWOBJ`; a `BUILD` state, if any, is the third element.
    Call(Rc<Seq>),
}

/// The elements of a composite value, with its nesting depth.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Seq {
    /// 1 + the deepest element's depth.
    pub depth: usize,
    /// The elements; a dict stores key, value, key, value, ….
    pub items: Vec<Value>,
}

impl Value {
    fn depth(&self) -> usize {
        match self {
            Value::Tuple(s) | Value::List(s) | Value::Dict(s) | Value::PersId(s) | Value::Call(s) => s.depth,
            _ => 0,
        }
    }

    /// Builds a composite value, refusing excessive nesting.
    fn seq(make: fn(Rc<Seq>) -> Value, items: Vec<Value>) -> Result<Value, Reason> {
        let depth = 1 + items.iter().map(Value::depth).max().unwrap_or(0);
        if depth > MAX_DEPTH {
            return Err(format!("pickle nests deeper than {MAX_DEPTH} levels"));
        }
        Ok(make(Rc::new(Seq { depth, items })))
    }

    /// The entries of a dict as (key, value) pairs.
    pub fn dict_pairs(&self) -> Option<impl Iterator<Item = (&Value, &Value)>> {
        match self {
            Value::Dict(s) => Some(s.items.chunks_exact(2).map(|kv| (&kv[0], &kv[1]))),
            _ => None,
        }
    }

    /// Looks up a string key in a dict (the last duplicate wins, as in Python).
    pub fn dict_get(&self, key: &str) -> Option<&Value> {
        self.dict_pairs()?.filter(|(k, _)| k.as_str() == Some(key)).last().map(|(_, v)| v)
    }

    /// The text of a `Str`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value of an `Int`.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The elements of a tuple or list.
    pub fn as_items(&self) -> Option<&[Value]> {
        match self {
            Value::Tuple(s) | Value::List(s) => Some(&s.items),
            _ => None,
        }
    }

    /// A short description for error messages.
    pub fn kind(&self) -> String {
        match self {
            Value::None => "None".into(),
            Value::Bool(_) => "bool".into(),
            Value::Int(_) | Value::BigInt(_) => "int".into(),
            Value::Float(_) => "float".into(),
            Value::Str(_) => "str".into(),
            Value::Bytes(_) => "bytes".into(),
            Value::Global(g) => format!("{}.{}", g.0, g.1),
            Value::Tuple(_) => "tuple".into(),
            Value::List(_) => "list".into(),
            Value::Dict(_) => "dict".into(),
            Value::PersId(_) => "persistent id".into(),
            Value::Call(c) => format!("{}(...)", c.items.first().map_or_else(String::new, Value::kind)),
        }
    }
}

/// The result of running one pickle.
#[derive(Debug)]
pub(crate) struct Unpickled {
    /// The object on the stack at `STOP`.
    pub value: Value,
    /// Every persistent id met, in order (the torch layer maps them to storages).
    pub persistent_ids: Vec<Value>,
    /// Bytes consumed, including `STOP`.
    pub consumed: usize,
}

/// Runs the pickle at the start of `bytes` up to and including its `STOP`.
pub(crate) fn unpickle(bytes: &[u8]) -> Result<Unpickled, Reason> {
    let mut vm = Vm { bytes, pos: 0, stack: Vec::new(), marks: Vec::new(), memo: HashMap::new(), pids: Vec::new() };
    let value = vm.run()?;
    Ok(Unpickled { value, persistent_ids: vm.pids, consumed: vm.pos })
}

struct Vm<'a> {
    bytes: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    pids: Vec<Value>,
}

impl<'a> Vm<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Reason> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| format!("pickle truncated at byte {} (needs {n} more)", self.pos))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Reason> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, Reason> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, Reason> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn len_u64(&mut self) -> Result<usize, Reason> {
        usize::try_from(u64::from_le_bytes(self.array()?)).map_err(|_| "pickle length overflows".to_string())
    }

    fn line(&mut self) -> Result<String, Reason> {
        let rest = &self.bytes[self.pos..];
        let n = rest.iter().position(|&b| b == b'\n').ok_or("pickle truncated inside a GLOBAL name")?;
        let text = std::str::from_utf8(&rest[..n]).map_err(|_| "GLOBAL name is not UTF-8".to_string())?;
        self.pos += n + 1;
        Ok(text.to_owned())
    }

    fn text(&mut self, n: usize) -> Result<Value, Reason> {
        let raw = self.take(n)?;
        let s = std::str::from_utf8(raw).map_err(|_| format!("invalid UTF-8 string at byte {}", self.pos - n))?;
        Ok(Value::Str(s.into()))
    }

    fn pop(&mut self) -> Result<Value, Reason> {
        self.stack.pop().ok_or_else(|| format!("pickle stack underflow at byte {}", self.pos))
    }

    fn top(&mut self) -> Result<&mut Value, Reason> {
        let pos = self.pos;
        self.stack.last_mut().ok_or_else(|| format!("pickle stack underflow at byte {pos}"))
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>, Reason> {
        let mark = self.marks.pop().ok_or_else(|| format!("pickle MARK missing at byte {}", self.pos))?;
        if mark > self.stack.len() {
            return Err(format!("pickle MARK beyond the stack at byte {}", self.pos));
        }
        Ok(self.stack.split_off(mark))
    }

    fn pop_n(&mut self, n: usize) -> Result<Vec<Value>, Reason> {
        if self.stack.len() < n {
            return Err(format!("pickle stack underflow at byte {}", self.pos));
        }
        Ok(self.stack.split_off(self.stack.len() - n))
    }

    /// Appends `items` to the list (or dict, as key/value pairs) on top of the stack.
    fn extend_top(&mut self, items: Vec<Value>, want_dict: bool) -> Result<(), Reason> {
        let pos = self.pos;
        let top = self.top()?;
        let seq = match (top, want_dict) {
            (Value::List(s), false) | (Value::Dict(s), true) => s,
            (other, _) => return Err(format!("cannot add items to a {} at byte {pos}", other.kind())),
        };
        if want_dict && items.len() % 2 != 0 {
            return Err(format!("odd number of dict items at byte {pos}"));
        }
        let depth = 1 + items.iter().map(Value::depth).max().unwrap_or(0);
        if depth > MAX_DEPTH {
            return Err(format!("pickle nests deeper than {MAX_DEPTH} levels"));
        }
        let seq = Rc::make_mut(seq);
        seq.depth = seq.depth.max(depth);
        seq.items.extend(items);
        Ok(())
    }

    fn build(&mut self) -> Result<(), Reason> {
        let state = self.pop()?;
        let top = self.top()?;
        match top {
            // An OrderedDict's `__dict__` (torch's `_metadata`): not needed.
            Value::Dict(_) => Ok(()),
            Value::Call(c) if c.items.len() == 2 => {
                let depth = c.depth.max(state.depth() + 1);
                if depth > MAX_DEPTH {
                    return Err(format!("pickle nests deeper than {MAX_DEPTH} levels"));
                }
                let c = Rc::make_mut(c);
                c.depth = depth;
                c.items.push(state);
                Ok(())
            }
            other => Err(format!("BUILD on a {}", other.kind())),
        }
    }

    fn run(&mut self) -> Result<Value, Reason> {
        loop {
            let at = self.pos;
            let op = self.u8()?;
            let pushed = match op {
                0x80 => {
                    let proto = self.u8()?;
                    if proto > 5 {
                        return Err(format!("unsupported pickle protocol {proto}"));
                    }
                    None
                }
                0x95 => self.take(8).map(|_| None)?, // FRAME: a length hint only
                b'.' => return self.pop(),
                b'(' => {
                    self.marks.push(self.stack.len());
                    None
                }
                b'0' => self.pop().map(|_| None)?,
                b'1' => self.pop_mark().map(|_| None)?,
                b'2' => Some(self.top()?.clone()),
                b'N' => Some(Value::None),
                0x88 => Some(Value::Bool(true)),
                0x89 => Some(Value::Bool(false)),
                b'J' => Some(Value::Int(i32::from_le_bytes(self.array()?).into())),
                b'K' => Some(Value::Int(self.u8()?.into())),
                b'M' => Some(Value::Int(u16::from_le_bytes(self.array()?).into())),
                0x8a | 0x8b => {
                    let n = if op == 0x8a { usize::from(self.u8()?) } else { self.u32()? as usize };
                    Some(long_from_le(self.take(n)?))
                }
                b'G' => Some(Value::Float(f64::from_be_bytes(self.array()?))),
                b'X' | 0x8c | 0x8d => {
                    let n = match op {
                        b'X' => self.u32()? as usize,
                        0x8c => usize::from(self.u8()?),
                        _ => self.len_u64()?,
                    };
                    Some(self.text(n)?)
                }
                b'T' | b'U' | b'B' | b'C' => {
                    let n = if matches!(op, b'T' | b'B') { self.u32()? as usize } else { usize::from(self.u8()?) };
                    Some(Value::Bytes(self.take(n)?.into()))
                }
                b'}' => Some(Value::seq(Value::Dict, Vec::new())?),
                b']' => Some(Value::seq(Value::List, Vec::new())?),
                b')' => Some(Value::seq(Value::Tuple, Vec::new())?),
                b't' => Some(Value::seq(Value::Tuple, self.pop_mark()?)?),
                0x85..=0x87 => Some(Value::seq(Value::Tuple, self.pop_n(usize::from(op - 0x84))?)?),
                b'l' => Some(Value::seq(Value::List, self.pop_mark()?)?),
                b'd' => {
                    let items = self.pop_mark()?;
                    if items.len() % 2 != 0 {
                        return Err(format!("odd number of dict items at byte {at}"));
                    }
                    Some(Value::seq(Value::Dict, items)?)
                }
                b'a' | b'e' | b's' | b'u' => {
                    let items = match op {
                        b'a' => vec![self.pop()?],
                        b's' => self.pop_n(2)?,
                        _ => self.pop_mark()?,
                    };
                    self.extend_top(items, matches!(op, b's' | b'u'))?;
                    None
                }
                b'c' => Some(Value::Global(Rc::new((self.line()?, self.line()?)))),
                0x93 => {
                    let parts = self.pop_n(2)?;
                    match (parts[0].as_str(), parts[1].as_str()) {
                        (Some(m), Some(n)) => Some(Value::Global(Rc::new((m.into(), n.into())))),
                        _ => return Err(format!("STACK_GLOBAL needs two strings at byte {at}")),
                    }
                }
                b'q' | b'r' | 0x94 => {
                    let idx = match op {
                        b'q' => self.u8()?.into(),
                        b'r' => self.u32()?,
                        _ => u32::try_from(self.memo.len()).map_err(|_| "pickle memo overflow".to_string())?,
                    };
                    let v = self.top()?.clone();
                    self.memo.insert(idx, v);
                    None
                }
                b'h' | b'j' => {
                    let idx = if op == b'h' { self.u8()?.into() } else { self.u32()? };
                    let v = self.memo.get(&idx).cloned();
                    Some(v.ok_or_else(|| format!("pickle memo {idx} unset at byte {at}"))?)
                }
                b'Q' => {
                    let pid = self.pop()?;
                    self.pids.push(pid.clone());
                    Some(Value::seq(Value::PersId, vec![pid])?)
                }
                b'R' | 0x81 => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    Some(call(callable, args)?)
                }
                b'b' => self.build().map(|()| None)?,
                _ => return Err(format!("unsupported pickle opcode 0x{op:02x} at byte {at}")),
            };
            if let Some(v) = pushed {
                self.stack.push(v);
            }
        }
    }
}

/// `REDUCE`/`NEWOBJ`: `OrderedDict()` becomes a dict, anything else a [`Value::Call`].
fn call(callable: Value, args: Value) -> Result<Value, Reason> {
    if let Value::Global(g) = &callable {
        if g.0 == "collections" && g.1 == "OrderedDict" {
            let pairs = args.as_items().and_then(|a| a.first()).and_then(Value::as_items).unwrap_or(&[]);
            let mut items = Vec::with_capacity(pairs.len() * 2);
            for pair in pairs {
                match pair.as_items() {
                    Some([k, v]) => items.extend([k.clone(), v.clone()]),
                    _ => return Err("OrderedDict argument is not a list of pairs".into()),
                }
            }
            return Value::seq(Value::Dict, items);
        }
    }
    Value::seq(Value::Call, vec![callable, args])
}

/// Decodes a `LONG1`/`LONG4` payload (little-endian two's complement).
fn long_from_le(raw: &[u8]) -> Value {
    if raw.is_empty() {
        return Value::Int(0);
    }
    if raw.len() <= 8 {
        let fill = if raw[raw.len() - 1] & 0x80 != 0 { 0xff } else { 0 };
        let mut buf = [fill; 8];
        buf[..raw.len()].copy_from_slice(raw);
        return Value::Int(i64::from_le_bytes(buf));
    }
    Value::BigInt(raw.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(bytes: &[u8]) -> Result<Value, Reason> {
        unpickle(bytes).map(|u| u.value)
    }

    #[test]
    fn builds_an_ordered_dict_with_memo_references() {
        // pickle.dumps(OrderedDict(a=1, b=(1, 1)), protocol=2), memo reference for the second 1.
        let bytes = b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01(X\x01\x00\x00\x00aq\x02K\x01q\x03X\x01\x00\x00\x00bh\x03h\x03\x86u}b.";
        let v = run(bytes).unwrap();
        assert_eq!(v.dict_get("a"), Some(&Value::Int(1)));
        assert_eq!(v.dict_get("b").and_then(Value::as_items), Some(&[Value::Int(1), Value::Int(1)][..]));
    }

    #[test]
    fn integers_floats_and_persistent_ids() {
        assert_eq!(run(b"J\xff\xff\xff\xff.").unwrap(), Value::Int(-1));
        assert_eq!(run(b"\x8a\x02\xff\x7f.").unwrap(), Value::Int(0x7fff));
        assert_eq!(run(b"\x8a\x01\xff.").unwrap(), Value::Int(-1));
        assert_eq!(run(b"\x8a\x00.").unwrap(), Value::Int(0));
        assert!(matches!(run(b"\x8a\x09\x01\x02\x03\x04\x05\x06\x07\x08\x09.").unwrap(), Value::BigInt(_)));
        assert_eq!(run(b"G?\xf8\x00\x00\x00\x00\x00\x00.").unwrap(), Value::Float(1.5));
        let u = unpickle(b"K\x05Q.").unwrap();
        assert_eq!(u.persistent_ids, vec![Value::Int(5)]);
        assert_eq!(u.consumed, 4);
    }

    #[test]
    fn malformed_input_is_an_error() {
        for bad in
            [&b""[..], b"K", b"X\xff\xff\xff\xff", b"t.", b"a.", b"h\x00.", b"\xfe.", b"K\x01K\x02s.", b"\x80\x09."]
        {
            assert!(run(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut bytes = b"]".to_vec();
        bytes.extend(std::iter::repeat_n(0x85, 10_000));
        bytes.push(b'.');
        assert!(run(&bytes).unwrap_err().contains("deeper"));
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = unpickle(&bytes);
        }

        #[test]
        fn opcode_soup_never_panics(ops in proptest::collection::vec(
            prop::sample::select(b"(.0125NK}])tlde\x85\x86\x87asuqhQRb\x88\x89\x94".to_vec()), 0..200)
        ) {
            // Opcodes without long arguments, so that structure errors (not truncation) are hit.
            let bytes: Vec<u8> = ops.iter().flat_map(|&op| if matches!(op, b'K' | b'q' | b'h') { vec![op, 0] } else { vec![op] }).collect();
            let _ = unpickle(&bytes);
        }
    }
}
