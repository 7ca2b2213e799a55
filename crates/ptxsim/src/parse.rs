//! PTX module parser and decoder: turns the token stream into kernels of decoded
//! instructions (`ir`). Pass 1 reads statements, resolving register names through
//! lexical `{ }` scopes (inline-asm locals get fresh slots); pass 2 lays out shared,
//! local and param storage, resolves symbols and labels, and decodes each opcode.
//! Unknown opcodes fail here, at load time, with their line.

use std::collections::HashMap;

use crate::error::SimError;
use crate::ir::*;
use crate::lex::{lex, Tok, Token};
use crate::semantics::bits::PrmtMode;
use crate::semantics::float::{FBinOp, FCmp};
use crate::semantics::mma::MmaDesc;
use crate::semantics::types::{Rounding, ScalarType};
use crate::semantics::warp::{ReduxOp, ShflMode, VoteMode};
use crate::semantics::wgmma::WgmmaDesc;

/// A parsed module: kernels and module-scope global/const variables.
pub struct Parsed {
    /// The `.entry` kernels.
    pub kernels: Vec<Kernel>,
    /// Module-scope `.global`/`.const` variables.
    pub globals: Vec<GlobalVar>,
}

/// A raw operand before symbol resolution.
#[derive(Clone, Debug)]
enum ROp {
    Reg(Reg),
    Int(u64),
    Float(f64),
    Sreg(Sreg),
    Name(String),
    Addr(Box<ROp>, i64),
    /// `[base, {c0, c1, …}]`: a tensor map and coordinates (`cp.async.bulk.tensor`).
    TensorAddr(Box<ROp>, Vec<Option<ROp>>),
    Vec(Vec<Option<ROp>>),
    Not(Box<ROp>),
    Pair(Box<ROp>, Box<ROp>),
    Sink,
    /// `( a, b )` argument list of `call`.
    List(Vec<ROp>),
}

#[derive(Clone)]
struct RawInst {
    opcode: String,
    guard: Option<(Reg, bool)>,
    ops: Vec<ROp>,
    line: u32,
}

#[derive(Clone, Debug)]
struct VarDecl {
    name: String,
    align: u32,
    elem_size: u32,
    count: Option<u32>,
    init: Vec<u8>,
}

#[derive(Default, Clone)]
struct Scope {
    names: HashMap<String, Reg>,
    ranges: HashMap<String, (Reg, u32)>,
}

fn perr(line: u32, message: impl Into<String>) -> SimError {
    SimError::Parse { line, message: message.into() }
}

fn unsupported(line: u32, what: impl Into<String>) -> SimError {
    SimError::Unsupported { what: what.into(), line }
}

fn align_up(x: u32, a: u32) -> u32 {
    x.div_ceil(a.max(1)) * a.max(1)
}

fn sreg_of(name: &str) -> Option<Sreg> {
    let dim = |s: &str| match s {
        "x" => Some(0u8),
        "y" => Some(1),
        "z" => Some(2),
        _ => None,
    };
    if let Some((base, d)) = name.split_once('.') {
        let d = dim(d)?;
        return Some(match base {
            "%tid" => Sreg::Tid(d),
            "%ntid" => Sreg::Ntid(d),
            "%ctaid" => Sreg::Ctaid(d),
            "%nctaid" => Sreg::Nctaid(d),
            _ => return None,
        });
    }
    Some(match name {
        "%laneid" => Sreg::LaneId,
        "%warpid" => Sreg::WarpId,
        "%nwarpid" => Sreg::NWarpId,
        "%smid" => Sreg::SmId,
        "%nsmid" => Sreg::NSmId,
        "%clock" | "%clock64" | "%globaltimer" | "%globaltimer_lo" => Sreg::Clock,
        "%lanemask_eq" => Sreg::LanemaskEq,
        "%lanemask_le" => Sreg::LanemaskLe,
        "%lanemask_lt" => Sreg::LanemaskLt,
        "%lanemask_ge" => Sreg::LanemaskGe,
        "%lanemask_gt" => Sreg::LanemaskGt,
        "%dynamic_smem_size" => Sreg::DynSmem,
        "%total_smem_size" => Sreg::TotalSmem,
        _ => return None,
    })
}

struct P {
    toks: Vec<Token>,
    pos: usize,
}

impl P {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.t)
    }
    fn line(&self) -> u32 {
        self.toks.get(self.pos).or(self.toks.last()).map_or(0, |t| t.line)
    }
    fn next(&mut self) -> Result<Tok, SimError> {
        let l = self.line();
        let t = self.toks.get(self.pos).ok_or_else(|| perr(l, "unexpected end of input"))?;
        self.pos += 1;
        Ok(t.t.clone())
    }
    fn is_p(&self, c: char) -> bool {
        self.peek() == Some(&Tok::P(c))
    }
    fn eat_p(&mut self, c: char) -> bool {
        if self.is_p(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn expect_p(&mut self, c: char) -> Result<(), SimError> {
        if self.eat_p(c) {
            Ok(())
        } else {
            Err(perr(self.line(), format!("expected `{c}`, found {:?}", self.peek())))
        }
    }
    fn ident(&mut self) -> Result<String, SimError> {
        let l = self.line();
        match self.next()? {
            Tok::Ident(s) => Ok(s),
            t => Err(perr(l, format!("expected a name, found {t:?}"))),
        }
    }
    fn int(&mut self) -> Result<u64, SimError> {
        let l = self.line();
        let neg = self.eat_p('-');
        match self.next()? {
            Tok::Int(v) => Ok(if neg { v.wrapping_neg() } else { v }),
            t => Err(perr(l, format!("expected an integer, found {t:?}"))),
        }
    }
    /// Skips the rest of the current source line (for `.loc`, `.file`, ...).
    fn skip_line(&mut self, line: u32) {
        while self.toks.get(self.pos).is_some_and(|t| t.line == line) {
            self.pos += 1;
        }
    }
    fn skip_to_semi(&mut self) -> Result<(), SimError> {
        while !self.eat_p(';') {
            self.next()?;
        }
        Ok(())
    }
    /// Skips a balanced `{ ... }` group starting at the current `{`.
    fn skip_braces(&mut self) -> Result<(), SimError> {
        self.expect_p('{')?;
        let mut depth = 1;
        while depth > 0 {
            match self.next()? {
                Tok::P('{') => depth += 1,
                Tok::P('}') => depth -= 1,
                _ => {}
            }
        }
        Ok(())
    }

    /// Parses a variable declaration after its state-space directive, up to `;`.
    fn var_decl(&mut self) -> Result<VarDecl, SimError> {
        let line = self.line();
        let mut align = 0;
        let mut vec = 1;
        let mut ty = None;
        let name;
        loop {
            let s = self.ident()?;
            match s.as_str() {
                ".align" => align = self.int()? as u32,
                ".v2" => vec = 2,
                ".v4" => vec = 4,
                ".v8" => vec = 8,
                ".ptr" | ".global" | ".shared" | ".const" | ".local" => {}
                _ if s.starts_with('.') => {
                    ty = Some(
                        ScalarType::from_suffix(&s[1..]).ok_or_else(|| perr(line, format!("unknown type `{s}`")))?,
                    )
                }
                _ => {
                    name = s;
                    break;
                }
            }
        }
        let ty = ty.ok_or_else(|| perr(line, "variable without a type"))?;
        let elem_size = (ty.bits().max(8) / 8) * vec;
        let mut count = Some(1u32);
        let mut dims = 0;
        while self.eat_p('[') {
            dims += 1;
            if self.eat_p(']') {
                count = None;
            } else {
                let n = self.int()? as u32;
                self.expect_p(']')?;
                count = count.map(|c| c * n);
            }
        }
        let _ = dims;
        let mut init = Vec::new();
        if self.eat_p('=') {
            let mut vals = Vec::new();
            self.init_values(&mut vals)?;
            for v in vals {
                let bytes = match v {
                    Tok::Int(x) => x.to_le_bytes(),
                    Tok::Float(f) => {
                        if ty == ScalarType::F32 {
                            ((f as f32).to_bits() as u64).to_le_bytes()
                        } else {
                            f.to_bits().to_le_bytes()
                        }
                    }
                    _ => return Err(unsupported(line, "non-numeric initializer")),
                };
                init.extend_from_slice(&bytes[..(elem_size / vec) as usize]);
            }
        }
        self.expect_p(';')?;
        if align == 0 {
            align = elem_size.max(1);
        }
        Ok(VarDecl { name, align, elem_size, count, init })
    }

    fn init_values(&mut self, out: &mut Vec<Tok>) -> Result<(), SimError> {
        if self.eat_p('{') {
            loop {
                if self.eat_p('}') {
                    break;
                }
                self.init_values(out)?;
                self.eat_p(',');
            }
            return Ok(());
        }
        let neg = self.eat_p('-');
        let l = self.line();
        match self.next()? {
            Tok::Int(v) => out.push(Tok::Int(if neg { v.wrapping_neg() } else { v })),
            Tok::Float(f) => out.push(Tok::Float(if neg { -f } else { f })),
            t => return Err(unsupported(l, format!("initializer {t:?}"))),
        }
        Ok(())
    }
}

/// Per-function pass-1 state.
#[derive(Clone)]
struct Func {
    scopes: Vec<Scope>,
    nregs: u32,
    insts: Vec<RawInst>,
    labels: HashMap<String, u32>,
    shared: Vec<VarDecl>,
    local: Vec<VarDecl>,
    /// `(first slot, count, name)` of each register declaration (hazard reports).
    reg_names: Vec<(Reg, u32, String)>,
}

impl Func {
    fn lookup(&self, name: &str) -> Option<Reg> {
        for s in self.scopes.iter().rev() {
            if let Some(&r) = s.names.get(name) {
                return Some(r);
            }
            let digits = name.len() - name.bytes().rev().take_while(u8::is_ascii_digit).count();
            if digits < name.len() {
                if let (Some(&(base, n)), Ok(i)) = (s.ranges.get(&name[..digits]), name[digits..].parse::<u32>()) {
                    if i < n {
                        return Some(base + i);
                    }
                }
            }
        }
        None
    }

    fn operand(&self, p: &mut P) -> Result<ROp, SimError> {
        let line = p.line();
        let op = match p.next()? {
            Tok::P('[') => {
                let base = self.operand(p)?;
                let mut off = 0i64;
                while p.eat_p('+') {
                    off = off.wrapping_add(p.int()? as i64);
                }
                if p.is_p('-') {
                    off = off.wrapping_add(p.int()? as i64);
                }
                if p.is_p(',') && off != 0 {
                    return Err(perr(line, "a tensor-map operand with an address offset is not supported"));
                }
                if p.eat_p(',') {
                    let ROp::Vec(coords) = self.operand(p)? else {
                        return Err(perr(line, "expected `{coordinates}` after the tensor map"));
                    };
                    p.expect_p(']')?;
                    return Ok(ROp::TensorAddr(Box::new(base), coords));
                }
                p.expect_p(']')?;
                ROp::Addr(Box::new(base), off)
            }
            Tok::P('{') => {
                let mut v = Vec::new();
                loop {
                    if p.eat_p('}') {
                        break;
                    }
                    let o = self.operand(p)?;
                    v.push(if matches!(o, ROp::Sink) { None } else { Some(o) });
                    p.eat_p(',');
                }
                ROp::Vec(v)
            }
            Tok::P('!') => ROp::Not(Box::new(self.operand(p)?)),
            Tok::P('(') => {
                let mut v = Vec::new();
                while !p.eat_p(')') {
                    v.push(self.operand(p)?);
                    p.eat_p(',');
                }
                ROp::List(v)
            }
            Tok::P('-') => match p.next()? {
                Tok::Int(v) => ROp::Int(v.wrapping_neg()),
                Tok::Float(f) => ROp::Float(-f),
                t => return Err(perr(line, format!("bad operand after `-`: {t:?}"))),
            },
            Tok::Int(v) => ROp::Int(v),
            Tok::Float(f) => ROp::Float(f),
            Tok::Ident(s) => {
                if s == "_" {
                    ROp::Sink
                } else if let Some(r) = self.lookup(&s) {
                    ROp::Reg(r)
                } else if let Some(sr) = sreg_of(&s) {
                    ROp::Sreg(sr)
                } else if s.starts_with('%') {
                    return Err(perr(line, format!("undeclared register `{s}`")));
                } else {
                    ROp::Name(s)
                }
            }
            t => return Err(perr(line, format!("unexpected operand token {t:?}"))),
        };
        if p.eat_p('|') {
            let second = self.operand(p)?;
            return Ok(ROp::Pair(Box::new(op), Box::new(second)));
        }
        Ok(op)
    }

    fn reg_decl(&mut self, p: &mut P) -> Result<(), SimError> {
        // `.reg .type name, name<N>, ...;` (PTX ISA "Parameterized Variable Names")
        loop {
            match p.peek() {
                Some(Tok::Ident(s)) if s.starts_with('.') => {
                    p.pos += 1;
                }
                _ => break,
            }
        }
        loop {
            let name = p.ident()?;
            let scope = self.scopes.last_mut().ok_or_else(|| perr(p.line(), "no scope"))?;
            if p.eat_p('<') {
                let n = p.int()? as u32;
                p.expect_p('>')?;
                self.reg_names.push((self.nregs, n, name.clone()));
                scope.ranges.insert(name, (self.nregs, n));
                self.nregs += n;
            } else {
                self.reg_names.push((self.nregs, 1, name.clone()));
                scope.names.insert(name, self.nregs);
                self.nregs += 1;
            }
            if p.eat_p(';') {
                return Ok(());
            }
            p.expect_p(',')?;
        }
    }

    /// Parses a function body after its `{`, up to the matching `}`.
    fn body(&mut self, p: &mut P) -> Result<(), SimError> {
        loop {
            let line = p.line();
            match p.next()? {
                Tok::P('{') => self.scopes.push(Scope::default()),
                Tok::P('}') => {
                    self.scopes.pop();
                    if self.scopes.len() == 1 {
                        return Ok(());
                    }
                }
                Tok::P('@') => {
                    let neg = p.eat_p('!');
                    let name = p.ident()?;
                    let r = self.lookup(&name).ok_or_else(|| perr(line, format!("undeclared predicate `{name}`")))?;
                    let opcode = p.ident()?;
                    self.instruction(p, opcode, Some((r, neg)), line)?;
                }
                Tok::Ident(s) if s.starts_with('.') => match s.as_str() {
                    ".reg" => self.reg_decl(p)?,
                    ".shared" => {
                        let v = p.var_decl()?;
                        self.shared.push(v);
                    }
                    ".local" | ".param" => {
                        // Call-sequence `.param` variables live in per-thread local memory.
                        let v = p.var_decl()?;
                        self.local.push(v);
                    }
                    ".loc" | ".file" => p.skip_line(line),
                    ".pragma" | ".maxnreg" | ".maxntid" | ".reqntid" | ".minnctapersm" => p.skip_to_semi()?,
                    _ => return Err(unsupported(line, format!("directive `{s}` in a function body"))),
                },
                Tok::Ident(s) => {
                    if p.eat_p(':') {
                        let at = self.insts.len() as u32;
                        if self.labels.insert(s.clone(), at).is_some() {
                            return Err(perr(line, format!("duplicate label `{s}`")));
                        }
                    } else {
                        self.instruction(p, s, None, line)?;
                    }
                }
                t => return Err(perr(line, format!("unexpected token {t:?}"))),
            }
        }
    }

    fn instruction(
        &mut self,
        p: &mut P,
        opcode: String,
        guard: Option<(Reg, bool)>,
        line: u32,
    ) -> Result<(), SimError> {
        let mut ops = Vec::new();
        if !p.eat_p(';') {
            loop {
                ops.push(self.operand(p)?);
                if p.eat_p(';') {
                    break;
                }
                p.expect_p(',')?;
            }
        }
        self.insts.push(RawInst { opcode, guard, ops, line });
        Ok(())
    }
}

/// Module-level state while parsing.
#[derive(Default)]
struct ModState {
    shared: Vec<VarDecl>,
    dyn_shared: Vec<(String, u32)>,
    globals: Vec<GlobalVar>,
}

/// Parses a PTX module.
pub fn parse_module(src: &str) -> Result<Parsed, SimError> {
    let mut p = P { toks: lex(src)?, pos: 0 };
    let mut m = ModState::default();
    let mut entries = Vec::new();
    let mut funcs: HashMap<String, FuncDef> = HashMap::new();
    let mut is_extern = false;
    while let Some(t) = p.peek().cloned() {
        let line = p.line();
        let Tok::Ident(s) = t else {
            return Err(perr(line, format!("unexpected token {t:?} at module scope")));
        };
        p.pos += 1;
        match s.as_str() {
            ".version" | ".target" | ".address_size" | ".file" | ".loc" => p.skip_line(line),
            ".pragma" => p.skip_to_semi()?,
            ".section" => {
                p.next()?;
                p.skip_braces()?;
            }
            ".visible" | ".weak" | ".common" => {}
            ".extern" => is_extern = true,
            ".entry" => {
                entries.push(parse_entry(&mut p)?);
                is_extern = false;
            }
            ".func" => {
                if let Some(fd) = parse_func(&mut p)? {
                    funcs.insert(fd.name.clone(), fd);
                }
                is_extern = false;
            }
            ".shared" => {
                let v = p.var_decl()?;
                if v.count.is_none() || is_extern {
                    m.dyn_shared.push((v.name, v.align));
                } else {
                    m.shared.push(v);
                }
                is_extern = false;
            }
            ".global" | ".const" => {
                let v = p.var_decl()?;
                let size = v.elem_size * v.count.unwrap_or(0);
                let mut init = v.init;
                init.resize(size as usize, 0);
                m.globals.push(GlobalVar { name: v.name, size, init });
                is_extern = false;
            }
            _ => return Err(perr(line, format!("unexpected `{s}` at module scope"))),
        }
    }
    let mut kernels = Vec::with_capacity(entries.len());
    for mut e in entries {
        let mut counter = 0;
        inline_calls(&mut e.f, &funcs, 0, &mut counter)?;
        kernels.push(decode_kernel(e.name, e.params, e.param_size, e.f, &m, e.max_threads, e.reqntid)?);
    }
    Ok(Parsed { kernels, globals: m.globals })
}

/// A parsed `.entry` before decoding.
struct EntryRaw {
    name: String,
    params: Vec<Param>,
    param_size: u32,
    f: Func,
    max_threads: Option<u32>,
    reqntid: Option<[u32; 3]>,
}

/// A parsed `.func` definition, inlined at each `call`.
struct FuncDef {
    name: String,
    rets: Vec<String>,
    params: Vec<String>,
    f: Func,
}

fn new_func() -> Func {
    Func {
        scopes: vec![Scope::default(), Scope::default()],
        nregs: 0,
        insts: Vec::new(),
        labels: HashMap::new(),
        shared: Vec::new(),
        local: Vec::new(),
        reg_names: Vec::new(),
    }
}

/// Parses `.func {(.param ret)} name {(.param ...)} {body | ;}`; `None` for a declaration.
fn parse_func(p: &mut P) -> Result<Option<FuncDef>, SimError> {
    let names = |p: &mut P| -> Result<Vec<String>, SimError> {
        let mut v = Vec::new();
        while !p.eat_p(')') {
            let line = p.line();
            if p.ident()? != ".param" {
                return Err(perr(line, "expected .param"));
            }
            v.push(p_param(p)?.name);
            p.eat_p(',');
        }
        Ok(v)
    };
    let rets = if p.eat_p('(') { names(p)? } else { Vec::new() };
    let name = p.ident()?;
    let params = if p.eat_p('(') { names(p)? } else { Vec::new() };
    while !p.is_p('{') && !p.is_p(';') {
        p.next()?;
    }
    if p.eat_p(';') {
        return Ok(None);
    }
    p.expect_p('{')?;
    let mut f = new_func();
    f.body(p)?;
    Ok(Some(FuncDef { name, rets, params, f }))
}

fn rename(o: &ROp, base: Reg, names: &HashMap<String, String>) -> ROp {
    match o {
        ROp::Reg(r) => ROp::Reg(r + base),
        ROp::Name(n) => ROp::Name(names.get(n).cloned().unwrap_or_else(|| n.clone())),
        ROp::Addr(b, off) => ROp::Addr(Box::new(rename(b, base, names)), *off),
        ROp::Vec(v) => ROp::Vec(v.iter().map(|x| x.as_ref().map(|x| rename(x, base, names))).collect()),
        ROp::Not(b) => ROp::Not(Box::new(rename(b, base, names))),
        ROp::Pair(a, b) => ROp::Pair(Box::new(rename(a, base, names)), Box::new(rename(b, base, names))),
        ROp::List(v) => ROp::List(v.iter().map(|x| rename(x, base, names)).collect()),
        x => x.clone(),
    }
}

/// Replaces each `call` of a `.func` by a copy of its body (registers moved to fresh
/// slots, labels and locals renamed, params bound to the call's argument variables,
/// `ret` turned into a branch past the copy). Recursion is unsupported.
fn inline_calls(f: &mut Func, funcs: &HashMap<String, FuncDef>, depth: u32, counter: &mut u32) -> Result<(), SimError> {
    if !f.insts.iter().any(|i| i.opcode == "call" || i.opcode.starts_with("call.")) {
        return Ok(());
    }
    let old = std::mem::take(&mut f.insts);
    let orig: Vec<String> = f.labels.keys().cloned().collect();
    let mut remap = Vec::with_capacity(old.len() + 1);
    for r in old {
        remap.push(f.insts.len() as u32);
        if r.opcode != "call" && !r.opcode.starts_with("call.") {
            f.insts.push(r);
            continue;
        }
        let line = r.line;
        if depth >= 8 {
            return Err(unsupported(line, "recursive or too deeply nested calls"));
        }
        if r.guard.is_some() {
            return Err(unsupported(line, "predicated call"));
        }
        let list = |o: Option<&ROp>| -> Vec<String> {
            match o {
                Some(ROp::List(v)) => {
                    v.iter().filter_map(|x| if let ROp::Name(n) = x { Some(n.clone()) } else { None }).collect()
                }
                _ => Vec::new(),
            }
        };
        let fpos = r.ops.iter().position(|o| matches!(o, ROp::Name(_)));
        let (Some(fi), true) = (fpos, fpos.is_some_and(|i| i <= 1)) else {
            return Err(unsupported(line, "indirect call"));
        };
        let Some(ROp::Name(fname)) = r.ops.get(fi) else {
            return Err(unsupported(line, "indirect call"));
        };
        let callee = funcs
            .get(fname)
            .ok_or_else(|| unsupported(line, format!("call of `{fname}` (not defined in the module)")))?;
        let rets = if fi == 1 { list(r.ops.first()) } else { Vec::new() };
        let args = list(r.ops.get(fi + 1));
        if args.len() != callee.params.len() || rets.len() != callee.rets.len() {
            return Err(perr(line, format!("call of `{fname}` with the wrong number of arguments")));
        }
        let mut body = callee.f.clone();
        inline_calls(&mut body, funcs, depth + 1, counter)?;
        *counter += 1;
        let prefix = format!("__inl{counter}_");
        let mut names: HashMap<String, String> = HashMap::new();
        for (p, a) in callee.params.iter().zip(&args).chain(callee.rets.iter().zip(&rets)) {
            names.insert(p.clone(), a.clone());
        }
        for l in body.labels.keys() {
            names.insert(l.clone(), format!("{prefix}{l}"));
        }
        for v in body.local.iter_mut().chain(body.shared.iter_mut()) {
            let n = format!("{prefix}{}", v.name);
            names.insert(std::mem::replace(&mut v.name, n.clone()), n);
        }
        let base = f.nregs;
        f.nregs += body.nregs;
        f.reg_names.extend(body.reg_names.iter().map(|(r, n, name)| (r + base, *n, name.clone())));
        let start = f.insts.len() as u32;
        let end_label = format!("{prefix}return");
        for bi in &body.insts {
            let mut ni = RawInst {
                opcode: bi.opcode.clone(),
                guard: bi.guard.map(|(g, n)| (g + base, n)),
                ops: bi.ops.iter().map(|o| rename(o, base, &names)).collect(),
                line: bi.line,
            };
            if ni.opcode == "ret" || ni.opcode.starts_with("ret.") {
                ni.opcode = "bra".into();
                ni.ops = vec![ROp::Name(end_label.clone())];
            }
            f.insts.push(ni);
        }
        for (l, i) in &body.labels {
            f.labels.insert(format!("{prefix}{l}"), start + i);
        }
        f.labels.insert(end_label, f.insts.len() as u32);
        f.local.append(&mut body.local);
        f.shared.append(&mut body.shared);
    }
    remap.push(f.insts.len() as u32);
    for name in orig {
        if let Some(v) = f.labels.get_mut(&name) {
            *v = remap.get(*v as usize).copied().unwrap_or(*v);
        }
    }
    Ok(())
}

fn parse_entry(p: &mut P) -> Result<EntryRaw, SimError> {
    let name = p.ident()?;
    let mut params = Vec::new();
    let mut off = 0u32;
    if p.eat_p('(') {
        while !p.eat_p(')') {
            let line = p.line();
            let d = p.ident()?;
            if d != ".param" {
                return Err(perr(line, format!("expected .param, found `{d}`")));
            }
            let v = p_param(p)?;
            off = align_up(off, v.align);
            let size = v.elem_size * v.count.unwrap_or(1);
            params.push(Param {
                name: v.name,
                offset: off,
                size,
                ty: ScalarType::B8,
                is_array: v.count != Some(1) || v.elem_size == 1 && size > 1,
            });
            off += size;
            p.eat_p(',');
        }
    }
    let mut max_threads = None;
    let mut reqntid = None;
    while !p.is_p('{') {
        let line = p.line();
        let d = p.ident()?;
        let mut dims = vec![p.int()? as u32];
        while p.eat_p(',') {
            dims.push(p.int()? as u32);
        }
        match d.as_str() {
            ".maxntid" => max_threads = Some(dims.iter().product()),
            ".reqntid" => {
                dims.resize(3, 1);
                reqntid = Some([dims[0], dims[1], dims[2]]);
                max_threads = Some(dims.iter().product());
            }
            ".minnctapersm" | ".maxnreg" | ".maxnctapersm" => {}
            _ => return Err(perr(line, format!("unknown kernel directive `{d}`"))),
        }
    }
    p.expect_p('{')?;
    let mut f = new_func();
    f.body(p)?;
    Ok(EntryRaw { name, params, param_size: off, f, max_threads, reqntid })
}

/// Reads the declaration after `.param` (type, optional `.align`, name, `[N]`).
fn p_param(p: &mut P) -> Result<VarDecl, SimError> {
    let line = p.line();
    let mut align = 0;
    let mut ty = None;
    let name = loop {
        let s = p.ident()?;
        match s.as_str() {
            ".align" => align = p.int()? as u32,
            ".ptr" | ".global" | ".shared" | ".const" | ".local" => {
                if p.eat_p('.') {
                    p.ident()?;
                }
            }
            _ if s.starts_with('.') => ty = ScalarType::from_suffix(&s[1..]),
            _ => break s,
        }
    };
    let ty = ty.ok_or_else(|| perr(line, "param without a type"))?;
    let elem_size = ty.bits().max(8) / 8;
    let mut count = Some(1);
    if p.eat_p('[') {
        count = Some(p.int()? as u32);
        p.expect_p(']')?;
    }
    if align == 0 {
        align = elem_size;
    }
    Ok(VarDecl { name, align, elem_size, count, init: Vec::new() })
}

/// What a name in an operand refers to.
#[derive(Clone, Copy)]
enum Sym {
    Shared(u32),
    Local(u32),
    Param(u32),
    Global(u32),
}

struct Dec<'a> {
    syms: HashMap<String, Sym>,
    /// Hidden slot holding the carry flag `CC.CF`.
    cc_reg: Reg,
    labels: &'a HashMap<String, u32>,
    line: u32,
}

fn decode_kernel(
    name: String,
    params: Vec<Param>,
    param_size: u32,
    f: Func,
    m: &ModState,
    max_threads: Option<u32>,
    reqntid: Option<[u32; 3]>,
) -> Result<Kernel, SimError> {
    let mut syms = HashMap::new();
    // Shared layout (PTX ISA "Shared State Space"): the kernel's static variables, then
    // referenced module-scope ones, then the dynamic extern array at the max alignment.
    let mut off = 0u32;
    let mut max_align = 16u32;
    for v in &f.shared {
        off = align_up(off, v.align);
        max_align = max_align.max(v.align);
        syms.insert(v.name.clone(), Sym::Shared(off));
        off += v.elem_size * v.count.unwrap_or(0);
    }
    let referenced = |n: &str| {
        f.insts.iter().any(|i| {
            i.ops.iter().any(|o| match o {
                ROp::Name(s) => s == n,
                ROp::Addr(b, _) => matches!(&**b, ROp::Name(s) if s == n),
                _ => false,
            })
        })
    };
    for v in &m.shared {
        if !syms.contains_key(&v.name) && referenced(&v.name) {
            off = align_up(off, v.align);
            max_align = max_align.max(v.align);
            syms.insert(v.name.clone(), Sym::Shared(off));
            off += v.elem_size * v.count.unwrap_or(0);
        }
    }
    for (_, a) in &m.dyn_shared {
        max_align = max_align.max(*a);
    }
    let static_smem = off;
    let dyn_off = align_up(off, max_align);
    for (n, _) in &m.dyn_shared {
        syms.entry(n.clone()).or_insert(Sym::Shared(dyn_off));
    }
    let mut loff = 0u32;
    for v in &f.local {
        loff = align_up(loff, v.align);
        syms.insert(v.name.clone(), Sym::Local(loff));
        loff += v.elem_size * v.count.unwrap_or(0);
    }
    for p in &params {
        syms.insert(p.name.clone(), Sym::Param(p.offset));
    }
    for (i, g) in m.globals.iter().enumerate() {
        syms.entry(g.name.clone()).or_insert(Sym::Global(i as u32));
    }
    let mut d = Dec { syms, labels: &f.labels, line: 0, cc_reg: f.nregs };
    let mut insts = Vec::with_capacity(f.insts.len() + 1);
    for r in &f.insts {
        d.line = r.line;
        insts.push(d.decode(r)?);
    }
    let end_line = f.insts.last().map_or(0, |i| i.line);
    insts.push(Inst {
        kind: Kind::Exit,
        guard: None,
        line: end_line,
        class: Class::Control,
        collective: false,
        wg: false,
    });
    let (uses_wgmma, wg_access) = wgmma_accesses(&mut insts, f.nregs + 1);
    let uses_bulk = insts.iter().any(|i| {
        matches!(
            i.kind,
            Kind::CpAsyncBulk { .. }
                | Kind::CpAsyncBulkTensor { .. }
                | Kind::Mbar { op: MbarOp::ExpectTx | MbarOp::CompleteTx | MbarOp::Arrive { expect_tx: true, .. }, .. }
        )
    });
    let uses_setmaxnreg = insts.iter().any(|i| matches!(i.kind, Kind::SetMaxNReg { .. }));
    let mut reg_names = f.reg_names;
    reg_names.push((f.nregs, 1, "%cc (carry flag)".into()));
    Ok(Kernel {
        name,
        params,
        param_size,
        insts,
        nregs: f.nregs + 1,
        static_smem,
        dyn_smem_offset: dyn_off,
        local_size: loff,
        max_threads,
        reqntid,
        reg_names,
        uses_wgmma,
        wg_access,
        uses_bulk,
        uses_setmaxnreg,
    })
}

/// For a kernel with `wgmma.mma_async`: each instruction's accesses to registers
/// that some wgmma uses as A or D (`Kernel::wg_access`); empty otherwise, so other
/// kernels pay one failed bounds check per step.
fn wgmma_accesses(insts: &mut [Inst], nregs: u32) -> (bool, Vec<Vec<(Reg, bool)>>) {
    let mut wg_reg = vec![false; nregs as usize];
    let mut any = false;
    for i in insts.iter() {
        if let Kind::Wgmma { ds, a, .. } = &i.kind {
            any = true;
            let a_regs: &[Reg] = if let WgA::Regs(v) = a { v } else { &[] };
            for r in ds.iter().chain(a_regs) {
                wg_reg[*r as usize] = true;
            }
        }
    }
    if !any {
        return (false, Vec::new());
    }
    let acc: Vec<Vec<(Reg, bool)>> = insts
        .iter()
        .map(|i| {
            let mut v = Vec::new();
            if let Some((g, _)) = i.guard {
                if wg_reg[g as usize] {
                    v.push((g, false));
                }
            }
            i.kind.visit_regs(&mut |r, write| {
                if wg_reg.get(r as usize).copied().unwrap_or(false) {
                    v.push((r, write));
                }
            });
            v
        })
        .collect();
    for (i, a) in insts.iter_mut().zip(&acc) {
        i.wg = !a.is_empty();
    }
    (true, acc)
}

struct Mods<'a> {
    name: &'a str,
    mods: Vec<&'a str>,
}

impl<'a> Mods<'a> {
    fn new(op: &'a str) -> Self {
        let mut it = op.split('.');
        let name = it.next().unwrap_or("");
        Mods { name, mods: it.collect() }
    }
    fn has(&self, m: &str) -> bool {
        self.mods.contains(&m)
    }
    fn types(&self) -> Vec<ScalarType> {
        self.mods.iter().filter_map(|m| ScalarType::from_suffix(m)).collect()
    }
    fn rnd(&self) -> Option<Rounding> {
        self.mods.iter().find_map(|m| Rounding::from_suffix(m))
    }
    fn fmods(&self) -> FMods {
        FMods {
            rnd: self.rnd(),
            ftz: self.has("ftz"),
            sat: self.has("sat") || self.has("satfinite"),
            relu: self.has("relu"),
        }
    }
    fn space(&self) -> Option<Space> {
        for m in &self.mods {
            match *m {
                "global" => return Some(Space::Global),
                "shared" | "shared::cta" => return Some(Space::Shared),
                "local" => return Some(Space::Local),
                "param" | "param::entry" => return Some(Space::Param),
                "const" => return Some(Space::Const),
                _ => {}
            }
        }
        None
    }
    fn vec(&self) -> usize {
        if self.has("v2") {
            2
        } else if self.has("v4") {
            4
        } else if self.has("v8") {
            8
        } else {
            1
        }
    }
}

fn cmp_of(m: &Mods) -> Option<FCmp> {
    m.mods.iter().find_map(|s| {
        Some(match *s {
            "eq" => FCmp::Eq,
            "ne" => FCmp::Ne,
            "lt" | "lo" => FCmp::Lt,
            "le" | "ls" => FCmp::Le,
            "gt" | "hi" => FCmp::Gt,
            "ge" | "hs" => FCmp::Ge,
            "equ" => FCmp::Equ,
            "neu" => FCmp::Neu,
            "ltu" => FCmp::Ltu,
            "leu" => FCmp::Leu,
            "gtu" => FCmp::Gtu,
            "geu" => FCmp::Geu,
            "num" => FCmp::Num,
            "nan" => FCmp::Nan,
            _ => return None,
        })
    })
}

fn class_of_space(s: Space) -> Class {
    match s {
        Space::Global | Space::Generic => Class::Global,
        Space::Shared => Class::Shared,
        Space::Local => Class::Local,
        Space::Param | Space::Const => Class::Param,
    }
}

fn is_half(t: ScalarType) -> bool {
    matches!(t, ScalarType::F16 | ScalarType::F16x2 | ScalarType::Bf16 | ScalarType::Bf16x2)
}

/// Modifiers of memory instructions that only carry cache/ordering hints.
fn is_mem_hint(m: &str) -> bool {
    m.starts_with("L1::")
        || m.starts_with("L2::")
        || matches!(
            m,
            "nc" | "ca"
                | "cg"
                | "cs"
                | "lu"
                | "cv"
                | "wb"
                | "wt"
                | "volatile"
                | "relaxed"
                | "acquire"
                | "release"
                | "acq_rel"
                | "weak"
                | "gpu"
                | "cta"
                | "sys"
                | "noftz"
                | "aligned"
                | "sync"
        )
}

impl Dec<'_> {
    fn err(&self, m: impl Into<String>) -> SimError {
        perr(self.line, m)
    }
    fn unsup(&self, m: impl Into<String>) -> SimError {
        unsupported(self.line, m)
    }
    fn sym(&self, n: &str) -> Result<Operand, SimError> {
        match self.syms.get(n) {
            Some(Sym::Shared(o) | Sym::Local(o) | Sym::Param(o)) => Ok(Operand::Imm(*o as u64)),
            Some(Sym::Global(i)) => Ok(Operand::GlobalSym(*i)),
            None => Err(self.err(format!("unknown symbol `{n}`"))),
        }
    }
    fn is_local_sym(&self, o: &ROp) -> bool {
        matches!(o, ROp::Addr(b, _) if matches!(&**b, ROp::Name(n) if matches!(self.syms.get(n), Some(Sym::Local(_)))))
    }
    fn src(&self, o: &ROp, ty: ScalarType) -> Result<Operand, SimError> {
        Ok(match o {
            ROp::Reg(r) => Operand::Reg(*r),
            ROp::Int(v) => Operand::Imm(*v),
            ROp::Float(f) => Operand::Imm(match ty {
                ScalarType::F32 => (*f as f32).to_bits() as u64,
                _ => f.to_bits(),
            }),
            ROp::Sreg(s) => Operand::Sreg(*s),
            ROp::Name(n) => self.sym(n)?,
            _ => return Err(self.err(format!("bad source operand {o:?}"))),
        })
    }
    fn dst(&self, o: &ROp) -> Result<Reg, SimError> {
        match o {
            ROp::Reg(r) => Ok(*r),
            _ => Err(self.err(format!("expected a destination register, found {o:?}"))),
        }
    }
    fn dst_opt(&self, o: &ROp) -> Result<Option<Reg>, SimError> {
        match o {
            ROp::Sink => Ok(None),
            _ => self.dst(o).map(Some),
        }
    }
    fn pred_src(&self, o: &ROp) -> Result<(Operand, bool), SimError> {
        match o {
            ROp::Not(inner) => Ok((self.src(inner, ScalarType::Pred)?, true)),
            _ => Ok((self.src(o, ScalarType::Pred)?, false)),
        }
    }
    fn addr(&self, o: &ROp) -> Result<Addr, SimError> {
        let ROp::Addr(b, off) = o else {
            return Err(self.err(format!("expected an address operand, found {o:?}")));
        };
        let base = self.src(b, ScalarType::U64)?;
        Ok(match base {
            Operand::Imm(v) => Addr { base: Operand::Imm(v.wrapping_add(*off as u64)), offset: 0 },
            _ => Addr { base, offset: *off },
        })
    }
    fn dst_list(&self, o: &ROp) -> Result<Vec<Option<Reg>>, SimError> {
        match o {
            ROp::Vec(v) => v.iter().map(|x| x.as_ref().map(|x| self.dst(x)).transpose()).collect(),
            _ => Ok(vec![Some(self.dst(o)?)]),
        }
    }
    fn src_list(&self, o: &ROp, ty: ScalarType) -> Result<Vec<Operand>, SimError> {
        match o {
            ROp::Vec(v) => v
                .iter()
                .map(|x| x.as_ref().ok_or_else(|| self.err("`_` as a source")).and_then(|x| self.src(x, ty)))
                .collect(),
            _ => Ok(vec![self.src(o, ty)?]),
        }
    }
    fn n(&self, ops: &[ROp], n: usize) -> Result<(), SimError> {
        if ops.len() < n {
            return Err(self.err(format!("expected {n} operands, found {}", ops.len())));
        }
        Ok(())
    }

    /// Decodes `mbarrier.*` (PTX ISA 9.7.13.15.9-16) on an object in shared memory.
    /// `.sem` (`.release`, `.acquire`, `.relaxed`) and `.scope` (`.cta`, `.cluster`)
    /// qualifiers are accepted: the simulator treats every mbarrier operation as
    /// ordering the block (see `step`), and launches have no clusters, so a CTA is the
    /// only member of its cluster: `.cluster` scope acts as `.cta`, and
    /// `.shared::cluster` addresses the executing CTA's own shared memory, like
    /// `.shared::cta`. As in the ISA (9.7.13.15.8), only `arrive` (with the sink `_`
    /// as its state), `expect_tx` and `complete_tx` take `.shared::cluster`.
    fn mbarrier(&self, m: &Mods, opcode: &str, ops: &[ROp]) -> Result<Kind, SimError> {
        const KNOWN: [&str; 20] = [
            "init",
            "arrive",
            "arrive_drop",
            "expect_tx",
            "complete_tx",
            "test_wait",
            "try_wait",
            "pending_count",
            "inval",
            "parity",
            "noComplete",
            "release",
            "acquire",
            "relaxed",
            "cta",
            "cluster",
            "shared",
            "shared::cta",
            "shared::cluster",
            "b64",
        ];
        if let Some(x) = m.mods.iter().find(|x| !KNOWN.contains(x)) {
            return Err(self.unsup(format!("`{opcode}` (modifier `.{x}`)")));
        }
        let cluster_space = m.has("shared::cluster");
        let count = |o: &ROp| self.src(o, ScalarType::U32);
        let (op, d, addr, b) = if m.has("init") {
            self.n(ops, 2)?;
            (MbarOp::Init, None, Some(self.addr(&ops[0])?), Some(count(&ops[1])?))
        } else if m.has("arrive") || m.has("arrive_drop") {
            let expect_tx = m.has("expect_tx");
            self.n(ops, 2 + expect_tx as usize)?;
            let d = self.dst_opt(&ops[0])?;
            if cluster_space && d.is_some() {
                return Err(self.err(format!(
                    "`{opcode}`: an arrive on .shared::cluster cannot return a state; use the sink `_`"
                )));
            }
            let b = ops.get(2).map(count).transpose()?;
            (MbarOp::Arrive { drop: m.has("arrive_drop"), expect_tx }, d, Some(self.addr(&ops[1])?), b)
        } else if m.has("expect_tx") || m.has("complete_tx") {
            self.n(ops, 2)?;
            let op = if m.has("expect_tx") { MbarOp::ExpectTx } else { MbarOp::CompleteTx };
            (op, None, Some(self.addr(&ops[0])?), Some(count(&ops[1])?))
        } else if m.has("test_wait") || m.has("try_wait") {
            // try_wait's optional fourth operand is a suspend-time hint: a try_wait here
            // returns at once, which the ISA allows ("following a system-dependent time
            // limit").
            self.n(ops, 3)?;
            if ops.len() > 3 + m.has("try_wait") as usize {
                return Err(self.err(format!("`{opcode}`: too many operands")));
            }
            (
                MbarOp::TestWait { parity: m.has("parity") },
                self.dst_opt(&ops[0])?,
                Some(self.addr(&ops[1])?),
                Some(self.src(&ops[2], ScalarType::B64)?),
            )
        } else if m.has("pending_count") {
            self.n(ops, 2)?;
            (MbarOp::PendingCount, self.dst_opt(&ops[0])?, None, Some(self.src(&ops[1], ScalarType::B64)?))
        } else if m.has("inval") {
            self.n(ops, 1)?;
            (MbarOp::Inval, None, Some(self.addr(&ops[0])?), None)
        } else {
            return Err(self.unsup(format!("`{opcode}`")));
        };
        let cluster_ok = matches!(op, MbarOp::Arrive { .. } | MbarOp::ExpectTx | MbarOp::CompleteTx);
        if cluster_space && !cluster_ok {
            return Err(self.unsup(format!("`{opcode}` (this operation does not take .shared::cluster)")));
        }
        if m.space().is_some_and(|sp| sp != Space::Shared) {
            return Err(self.unsup("mbarrier outside shared memory"));
        }
        Ok(Kind::Mbar { op, d, addr, b })
    }

    /// Decodes the non-tensor bulk copy from global to shared memory with mbarrier
    /// completion (PTX ISA 9.7.9.25.4.1):
    /// `cp.async.bulk.{shared::cluster,shared::cta}.global.mbarrier::complete_tx::bytes{.L2::cache_hint}
    /// [dstMem], [srcMem], size, [mbar]{, cache-policy}`. `.shared::cluster` names the
    /// executing CTA's own shared memory (no clusters here); the cache policy is a
    /// hint and is ignored. Other forms (tensor, multicast, other directions,
    /// `.bulk_group`, prefetch) are unsupported.
    fn cp_async_bulk(&self, m: &Mods, opcode: &str, ops: &[ROp]) -> Result<Kind, SimError> {
        let hint = m.mods.get(5) == Some(&"L2::cache_hint");
        let ok = m.mods.len() == 5 + hint as usize
            && m.mods[..2] == ["async", "bulk"]
            && matches!(m.mods[2], "shared::cluster" | "shared::cta")
            && m.mods[3] == "global"
            && m.mods[4] == "mbarrier::complete_tx::bytes";
        if !ok {
            return Err(self.unsup(format!(
                "`{opcode}` (of cp.async.bulk only the non-tensor global -> shared form with \
                 .mbarrier::complete_tx::bytes completion is supported)"
            )));
        }
        self.n(ops, 4 + hint as usize)?;
        if ops.len() > 4 + hint as usize {
            return Err(self.err(format!("`{opcode}`: too many operands")));
        }
        Ok(Kind::CpAsyncBulk {
            dst: self.addr(&ops[0])?,
            src: self.addr(&ops[1])?,
            size: self.src(&ops[2], ScalarType::U32)?,
            mbar: self.addr(&ops[3])?,
        })
    }

    /// Decodes the non-tensor bulk prefetch into L2 (PTX ISA "cp.async.bulk.prefetch"):
    /// `cp.async.bulk.prefetch.L2.global{.L2::cache_hint} [srcMem], size{, cache-policy}`.
    fn bulk_prefetch_l2(&self, m: &Mods, opcode: &str, ops: &[ROp]) -> Result<Kind, SimError> {
        let hint = m.mods.get(5) == Some(&"L2::cache_hint");
        let ok = m.mods.len() == 5 + hint as usize && m.mods[..5] == ["async", "bulk", "prefetch", "L2", "global"];
        if !ok {
            return Err(self.unsup(format!("`{opcode}` (of the bulk prefetches only .L2.global is supported)")));
        }
        self.n(ops, 2 + hint as usize)?;
        if ops.len() > 2 + hint as usize {
            return Err(self.err(format!("`{opcode}`: too many operands")));
        }
        Ok(Kind::BulkPrefetchL2 { src: self.addr(&ops[0])?, size: self.src(&ops[1], ScalarType::U32)? })
    }

    /// Decodes the tiled tensor bulk copy from global to shared memory with mbarrier
    /// completion (PTX ISA 9.7.9.25.5.1):
    /// `cp.async.bulk.tensor.{1..5}d.{shared::cluster,shared::cta}.global{.tile}.mbarrier::complete_tx::bytes{.L2::cache_hint}
    /// [dstMem], [tensorMap, {c0, …}], [mbar]{, cache-policy}`. As for the non-tensor
    /// form, `.shared::cluster` is the executing CTA's own shared memory and the cache
    /// policy is ignored; im2col mode, multicast, `.cta_group` and the other directions
    /// are unsupported.
    fn cp_async_bulk_tensor(&self, m: &Mods, opcode: &str, ops: &[ROp]) -> Result<Kind, SimError> {
        let unsupported = || {
            self.unsup(format!(
                "`{opcode}` (of cp.async.bulk.tensor only the tiled global -> shared form with \
                 .mbarrier::complete_tx::bytes completion is supported)"
            ))
        };
        let mut mods = m.mods.iter().copied().peekable();
        let prefix: Vec<&str> = mods.by_ref().take(3).collect();
        if prefix != ["async", "bulk", "tensor"] {
            return Err(unsupported());
        }
        let rank: usize = match mods.next().and_then(|d| d.strip_suffix('d')).and_then(|n| n.parse().ok()) {
            Some(n @ 1..=5) => n,
            _ => return Err(unsupported()),
        };
        if !matches!(mods.next(), Some("shared::cluster" | "shared::cta")) || mods.next() != Some("global") {
            return Err(unsupported());
        }
        mods.next_if_eq(&"tile");
        if mods.next() != Some("mbarrier::complete_tx::bytes") {
            return Err(unsupported());
        }
        let hint = mods.next_if_eq(&"L2::cache_hint").is_some();
        if mods.next().is_some() {
            return Err(unsupported());
        }
        let want = 3 + hint as usize;
        self.n(ops, want)?;
        if ops.len() > want {
            return Err(self.err(format!("`{opcode}`: too many operands")));
        }
        let ROp::TensorAddr(tmap, coords) = &ops[1] else {
            return Err(self.err(format!("`{opcode}`: expected `[tensorMap, {{coordinates}}]` as the source")));
        };
        if coords.len() != rank {
            return Err(self.err(format!("`{opcode}`: {} coordinates for a {rank}d copy", coords.len())));
        }
        let coords = coords
            .iter()
            .map(|c| {
                c.as_ref().ok_or_else(|| self.err("`_` as a coordinate")).and_then(|c| self.src(c, ScalarType::S32))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Kind::CpAsyncBulkTensor {
            dst: self.addr(&ops[0])?,
            tmap: self.addr(&ROp::Addr(tmap.clone(), 0))?,
            coords,
            mbar: self.addr(&ops[2])?,
        })
    }

    /// Decodes `wgmma.mma_async.sync.aligned.shape.dtype.atype.btype` (PTX ISA
    /// 9.7.15.5.2): `d, a, b-desc, scale-d, imm-scale-a, imm-scale-b, imm-trans-b` (A
    /// in registers) or `d, a-desc, b-desc, scale-d, imm-scale-a, imm-scale-b,
    /// imm-trans-a, imm-trans-b`. Forms outside the supported subset decode and fail
    /// with `Unsupported` when executed (`WgmmaDesc::validate`).
    fn wgmma(&self, m: &Mods, tys: &[ScalarType], ops: &[ROp]) -> Result<Kind, SimError> {
        if m.has("sp") {
            return Err(self.unsup("sparse wgmma.mma_async.sp"));
        }
        let shape = m
            .mods
            .iter()
            .find(|s| s.starts_with("m64n") && s.contains('k'))
            .ok_or_else(|| self.err("wgmma.mma_async without a .m64nNkK shape"))?;
        let (nn, kk) = shape[4..].split_once('k').ok_or_else(|| self.err(format!("bad wgmma shape `{shape}`")))?;
        let (n, k) = match (nn.parse::<u32>(), kk.parse::<u32>()) {
            (Ok(n), Ok(k)) => (n, k),
            _ => return Err(self.err(format!("bad wgmma shape `{shape}`"))),
        };
        if tys.len() != 3 {
            return Err(self.unsup(format!("wgmma.mma_async with types {tys:?} (expected .dtype.atype.btype)")));
        }
        let a_regs = matches!(ops.get(1), Some(ROp::Vec(_)));
        self.n(ops, if a_regs { 7 } else { 8 })?;
        let imm = |o: &ROp, what: &str| -> Result<i64, SimError> {
            match o {
                ROp::Int(v) => Ok(*v as i64),
                _ => Err(self.err(format!("wgmma {what} must be an immediate"))),
            }
        };
        let scale = |o: &ROp, what: &str| -> Result<bool, SimError> {
            match imm(o, what)? {
                1 => Ok(false),
                -1 => Ok(true),
                v => Err(self.err(format!("wgmma {what} must be 1 or -1, found {v}"))),
            }
        };
        let trans = |o: &ROp, what: &str| -> Result<bool, SimError> {
            match imm(o, what)? {
                0 => Ok(false),
                1 => Ok(true),
                v => Err(self.err(format!("wgmma {what} must be 0 or 1, found {v}"))),
            }
        };
        let (trans_a, trans_b) = if a_regs {
            (false, trans(&ops[6], "imm-trans-b")?)
        } else {
            (trans(&ops[6], "imm-trans-a")?, trans(&ops[7], "imm-trans-b")?)
        };
        let desc = WgmmaDesc {
            m: 64,
            n,
            k,
            d: tys[0],
            a: tys[1],
            b: tys[2],
            neg_a: scale(&ops[4], "imm-scale-a")?,
            neg_b: scale(&ops[5], "imm-scale-b")?,
            trans_a,
            trans_b,
        };
        let ds = self
            .dst_list(&ops[0])?
            .into_iter()
            .map(|x| x.ok_or_else(|| self.err("`_` in wgmma destination")))
            .collect::<Result<Vec<_>, _>>()?;
        let a = if a_regs {
            let regs = self
                .dst_list(&ops[1])?
                .into_iter()
                .map(|x| x.ok_or_else(|| self.err("`_` in wgmma A operand")))
                .collect::<Result<Vec<_>, _>>()?;
            WgA::Regs(regs)
        } else {
            WgA::Desc(self.src(&ops[1], ScalarType::B64)?)
        };
        let (scale_d, neg) = self.pred_src(&ops[3])?;
        if neg {
            return Err(self.err("wgmma scale-d cannot be negated"));
        }
        Ok(Kind::Wgmma { desc, ds, a, b: self.src(&ops[2], ScalarType::B64)?, scale_d })
    }

    fn decode(&mut self, r: &RawInst) -> Result<Inst, SimError> {
        let m = Mods::new(&r.opcode);
        let ops = &r.ops;
        let tys = m.types();
        let ty = tys.last().copied().unwrap_or(ScalarType::B32);
        let mut class = if ty.is_float() {
            if is_half(ty) {
                Class::Half
            } else {
                Class::Float
            }
        } else {
            Class::Integer
        };
        let mut collective = false;
        let unknown = || SimError::UnknownInstruction { opcode: r.opcode.clone(), line: r.line };
        let cout = m.has("cc");
        if (cout && matches!(m.name, "add" | "sub" | "mad")) || matches!(m.name, "addc" | "subc" | "madc") {
            if ty.is_float() || ty.bits() < 32 {
                return Err(self.unsup(format!("`{}`", r.opcode)));
            }
            let cin = m.name.ends_with('c');
            let d = self.dst(ops.first().ok_or_else(|| self.err("missing operands"))?)?;
            let kind = if m.name.starts_with("mad") {
                self.n(ops, 4)?;
                Kind::MadCarry {
                    hi: m.has("hi"),
                    cin,
                    cout,
                    ty,
                    d,
                    a: self.src(&ops[1], ty)?,
                    b: self.src(&ops[2], ty)?,
                    c: self.src(&ops[3], ty)?,
                    cc: self.cc_reg,
                }
            } else {
                self.n(ops, 3)?;
                Kind::AddCarry {
                    sub: m.name.starts_with("sub"),
                    cin,
                    cout,
                    ty,
                    d,
                    a: self.src(&ops[1], ty)?,
                    b: self.src(&ops[2], ty)?,
                    cc: self.cc_reg,
                }
            };
            return Ok(Inst { kind, guard: r.guard, line: r.line, class, collective, wg: false });
        }
        if m.has("cc") {
            return Err(self.unsup(format!("carry-flag form `{}`", r.opcode)));
        }
        let kind = match m.name {
            "mov" => {
                self.n(ops, 2)?;
                match (&ops[0], &ops[1]) {
                    (ROp::Vec(_), _) => {
                        let ds = self.dst_list(&ops[0])?;
                        let part_bits = ty.bits() / ds.len() as u32;
                        Kind::Unpack { a: self.src(&ops[1], ty)?, ds, part_bits }
                    }
                    (_, ROp::Vec(_)) => {
                        let parts = self.src_list(&ops[1], ty)?;
                        let part_bits = ty.bits() / parts.len() as u32;
                        Kind::Pack { d: self.dst(&ops[0])?, parts, part_bits }
                    }
                    _ => Kind::Mov { d: self.dst(&ops[0])?, a: self.src(&ops[1], ty)?, bits: ty.bits() },
                }
            }
            "add" | "sub" | "mul" | "min" | "max" | "div" | "rem" | "and" | "or" | "xor" | "shl" | "shr" | "mul24" => {
                self.n(ops, 3)?;
                let (d, a, b) = (self.dst(&ops[0])?, self.src(&ops[1], ty)?, self.src(&ops[2], ty)?);
                if ty.is_float() {
                    let fm = m.fmods();
                    let op = match m.name {
                        "add" => FBinOp::Add,
                        "sub" => FBinOp::Sub,
                        "mul" => FBinOp::Mul,
                        "min" if m.has("NaN") => FBinOp::MinNaN,
                        "max" if m.has("NaN") => FBinOp::MaxNaN,
                        "min" => FBinOp::Min,
                        "max" => FBinOp::Max,
                        "div" => {
                            if is_half(ty) {
                                return Err(self.unsup(format!("`{}`", r.opcode)));
                            }
                            return Ok(Inst {
                                kind: Kind::FDiv { ty, m: fm, d, a, b },
                                guard: r.guard,
                                line: r.line,
                                class,
                                collective,
                                wg: false,
                            });
                        }
                        _ => return Err(unknown()),
                    };
                    Kind::F2 { op, ty, m: fm, d, a, b }
                } else {
                    if m.has("sat") && ty == ScalarType::S32 && matches!(m.name, "add" | "sub") {
                        return Ok(Inst {
                            kind: Kind::SatAdd { sub: m.name == "sub", d, a, b },
                            guard: r.guard,
                            line: r.line,
                            class,
                            collective,
                            wg: false,
                        });
                    }
                    if m.has("sat") || m.has("relu") {
                        return Err(self.unsup(format!("`{}`", r.opcode)));
                    }
                    let op = match (m.name, m.has("hi"), m.has("wide")) {
                        ("mul", _, true) => {
                            return Ok(Inst {
                                kind: Kind::MulWide { ty, d, a, b },
                                guard: r.guard,
                                line: r.line,
                                class,
                                collective,
                                wg: false,
                            })
                        }
                        ("mul", true, _) => IntOp::MulHi,
                        ("mul", ..) => IntOp::MulLo,
                        ("mul24", false, _) => IntOp::Mul24Lo,
                        ("mul24", true, _) => return Err(self.unsup("mul24.hi")),
                        ("add", ..) => IntOp::Add,
                        ("sub", ..) => IntOp::Sub,
                        ("min", ..) => IntOp::Min,
                        ("max", ..) => IntOp::Max,
                        ("div", ..) => IntOp::Div,
                        ("rem", ..) => IntOp::Rem,
                        ("and", ..) => IntOp::And,
                        ("or", ..) => IntOp::Or,
                        ("xor", ..) => IntOp::Xor,
                        ("shl", ..) => IntOp::Shl,
                        _ => IntOp::Shr,
                    };
                    let b = if matches!(op, IntOp::Shl | IntOp::Shr) { self.src(&ops[2], ScalarType::U32)? } else { b };
                    Kind::Int2 { op, ty, d, a, b }
                }
            }
            "not" | "cnot" | "popc" | "clz" | "brev" => {
                self.n(ops, 2)?;
                let op = match m.name {
                    "not" => IntUn::Not,
                    "cnot" => IntUn::Cnot,
                    "popc" => IntUn::Popc,
                    "clz" => IntUn::Clz,
                    _ => IntUn::Brev,
                };
                Kind::Int1 { op, ty, d: self.dst(&ops[0])?, a: self.src(&ops[1], ty)? }
            }
            "neg" | "abs" | "sqrt" | "rcp" | "rsqrt" | "ex2" | "lg2" | "sin" | "cos" | "tanh" => {
                self.n(ops, 2)?;
                let (d, a) = (self.dst(&ops[0])?, self.src(&ops[1], ty)?);
                if !ty.is_float() {
                    match m.name {
                        "neg" => Kind::Int1 { op: IntUn::Neg, ty, d, a },
                        "abs" => Kind::Int1 { op: IntUn::Abs, ty, d, a },
                        _ => return Err(unknown()),
                    }
                } else {
                    let op = match m.name {
                        "neg" => FUn::Neg,
                        "abs" => FUn::Abs,
                        "sqrt" => FUn::Sqrt,
                        "rcp" => FUn::Rcp,
                        "rsqrt" => FUn::Rsqrt,
                        "ex2" => FUn::Ex2,
                        "lg2" => FUn::Lg2,
                        "sin" => FUn::Sin,
                        "cos" => FUn::Cos,
                        _ => FUn::Tanh,
                    };
                    Kind::F1 { op, ty, m: m.fmods(), d, a }
                }
            }
            "mad" | "fma" => {
                self.n(ops, 4)?;
                let d = self.dst(&ops[0])?;
                let (a, b, c) = (self.src(&ops[1], ty)?, self.src(&ops[2], ty)?, self.src(&ops[3], ty)?);
                if ty.is_float() {
                    Kind::Fma { ty, m: m.fmods(), d, a, b, c }
                } else {
                    if m.has("sat") {
                        return Err(self.unsup("mad.sat"));
                    }
                    let mode = if m.has("hi") {
                        MadMode::Hi
                    } else if m.has("wide") {
                        MadMode::Wide
                    } else {
                        MadMode::Lo
                    };
                    let c = if mode == MadMode::Wide { self.src(&ops[3], ScalarType::B64)? } else { c };
                    Kind::Mad { mode, ty, d, a, b, c }
                }
            }
            "setp" => {
                self.n(ops, 3)?;
                let cmp = cmp_of(&m).ok_or_else(|| self.err("setp without a comparison"))?;
                let (d, d2) = match &ops[0] {
                    ROp::Pair(a, b) => (self.dst_opt(a)?, self.dst_opt(b)?),
                    o => (self.dst_opt(o)?, None),
                };
                let comb = if ops.len() > 3 {
                    let bop = if m.has("and") {
                        BoolOp::And
                    } else if m.has("or") {
                        BoolOp::Or
                    } else if m.has("xor") {
                        BoolOp::Xor
                    } else {
                        return Err(self.err("setp with 4 operands needs .and/.or/.xor"));
                    };
                    let (c, neg) = self.pred_src(&ops[3])?;
                    Some((bop, c, neg))
                } else {
                    None
                };
                class = Class::Integer;
                Kind::Setp { cmp, ty, d, d2, a: self.src(&ops[1], ty)?, b: self.src(&ops[2], ty)?, comb }
            }
            "selp" => {
                self.n(ops, 4)?;
                class = Class::Integer;
                Kind::Selp {
                    bits: ty.bits(),
                    d: self.dst(&ops[0])?,
                    a: self.src(&ops[1], ty)?,
                    b: self.src(&ops[2], ty)?,
                    p: self.src(&ops[3], ScalarType::Pred)?,
                }
            }
            "slct" => {
                self.n(ops, 4)?;
                class = Class::Integer;
                let dty = tys.first().copied().unwrap_or(ScalarType::B32);
                Kind::Slct {
                    bits: dty.bits(),
                    float_c: ty == ScalarType::F32,
                    d: self.dst(&ops[0])?,
                    a: self.src(&ops[1], dty)?,
                    b: self.src(&ops[2], dty)?,
                    c: self.src(&ops[3], ty)?,
                }
            }
            "lop3" => {
                self.n(ops, 5)?;
                let lut = match &ops[4] {
                    ROp::Int(v) => *v as u8,
                    _ => return Err(self.err("lop3 LUT must be an immediate")),
                };
                Kind::Lop3 {
                    d: self.dst(&ops[0])?,
                    a: self.src(&ops[1], ty)?,
                    b: self.src(&ops[2], ty)?,
                    c: self.src(&ops[3], ty)?,
                    lut,
                }
            }
            "prmt" => {
                self.n(ops, 4)?;
                let mode = if m.has("f4e") {
                    PrmtMode::F4e
                } else if m.has("b4e") {
                    PrmtMode::B4e
                } else if m.has("rc8") {
                    PrmtMode::Rc8
                } else if m.has("ecl") {
                    PrmtMode::Ecl
                } else if m.has("ecr") {
                    PrmtMode::Ecr
                } else if m.has("rc16") {
                    PrmtMode::Rc16
                } else {
                    PrmtMode::Default
                };
                Kind::Prmt {
                    d: self.dst(&ops[0])?,
                    a: self.src(&ops[1], ty)?,
                    b: self.src(&ops[2], ty)?,
                    c: self.src(&ops[3], ty)?,
                    mode,
                }
            }
            "bfe" => {
                self.n(ops, 4)?;
                Kind::Bfe {
                    ty,
                    d: self.dst(&ops[0])?,
                    a: self.src(&ops[1], ty)?,
                    b: self.src(&ops[2], ScalarType::U32)?,
                    c: self.src(&ops[3], ScalarType::U32)?,
                }
            }
            "bfi" => {
                self.n(ops, 5)?;
                Kind::Bfi {
                    bits: ty.bits(),
                    d: self.dst(&ops[0])?,
                    f: self.src(&ops[1], ty)?,
                    b: self.src(&ops[2], ty)?,
                    c: self.src(&ops[3], ScalarType::U32)?,
                    e: self.src(&ops[4], ScalarType::U32)?,
                }
            }
            "cvt" => {
                if tys.len() != 2 {
                    return Err(self.err("cvt needs a destination and a source type"));
                }
                let (dty, sty) = (tys[0], tys[1]);
                if dty == ScalarType::B128 || sty == ScalarType::B128 {
                    return Err(self.unsup("cvt of .b128"));
                }
                class = Class::Conversion;
                if ops.len() == 3 && matches!(dty, ScalarType::F16x2 | ScalarType::Bf16x2) {
                    Kind::CvtPack {
                        bf16: dty == ScalarType::Bf16x2,
                        m: m.fmods(),
                        d: self.dst(&ops[0])?,
                        a: self.src(&ops[1], sty)?,
                        b: self.src(&ops[2], sty)?,
                    }
                } else {
                    self.n(ops, 2)?;
                    Kind::Cvt { dty, sty, m: m.fmods(), d: self.dst(&ops[0])?, a: self.src(&ops[1], sty)? }
                }
            }
            "cvta" => {
                self.n(ops, 2)?;
                class = Class::Conversion;
                let space = m.space().ok_or_else(|| self.err("cvta without a state space"))?;
                Kind::Cvta { to: m.has("to"), space, bits: ty.bits(), d: self.dst(&ops[0])?, a: self.src(&ops[1], ty)? }
            }
            "ld" | "ldu" | "st" => {
                self.n(ops, 2)?;
                for md in &m.mods {
                    let ok = is_mem_hint(md)
                        || ScalarType::from_suffix(md).is_some()
                        || matches!(
                            *md,
                            "global"
                                | "shared"
                                | "shared::cta"
                                | "local"
                                | "param"
                                | "param::entry"
                                | "const"
                                | "v2"
                                | "v4"
                                | "v8"
                        );
                    if !ok {
                        return Err(self.unsup(format!("`{}` (modifier .{md})", r.opcode)));
                    }
                }
                if ty == ScalarType::B128 {
                    return Err(self.unsup(".b128 memory access"));
                }
                let mut space = m.space().unwrap_or(Space::Generic);
                let addr_op = if m.name == "st" { &ops[0] } else { &ops[1] };
                if space == Space::Param && self.is_local_sym(addr_op) {
                    // A call sequence's `.param` variable (held in local memory).
                    space = Space::Local;
                }
                class = class_of_space(space);
                let n = m.vec();
                if m.name == "st" {
                    let addr = self.addr(&ops[0])?;
                    let srcs = self.src_list(&ops[1], ty)?;
                    if srcs.len() != n {
                        return Err(self.err("vector size does not match the operand count"));
                    }
                    Kind::St { space, ty, srcs, addr }
                } else {
                    let ds = self.dst_list(&ops[0])?;
                    if ds.len() != n {
                        return Err(self.err("vector size does not match the operand count"));
                    }
                    Kind::Ld { space, ty, ds, addr: self.addr(&ops[1])?, nc: m.has("nc") }
                }
            }
            "atom" | "red" => {
                let space = m.space().unwrap_or(Space::Generic);
                if matches!(space, Space::Local | Space::Param | Space::Const) {
                    return Err(self.unsup("atomics outside global/shared"));
                }
                if m.vec() > 1 {
                    return Err(self.unsup("vector atomics"));
                }
                class = class_of_space(space);
                let op = m
                    .mods
                    .iter()
                    .find_map(|s| {
                        Some(match *s {
                            "add" => AtomOp::Add,
                            "min" => AtomOp::Min,
                            "max" => AtomOp::Max,
                            "inc" => AtomOp::Inc,
                            "dec" => AtomOp::Dec,
                            "and" => AtomOp::And,
                            "or" => AtomOp::Or,
                            "xor" => AtomOp::Xor,
                            "exch" => AtomOp::Exch,
                            "cas" => AtomOp::Cas,
                            _ => return None,
                        })
                    })
                    .ok_or_else(|| self.err("atom without an operation"))?;
                let hint = m.mods.iter().any(|s| s.starts_with("L2::cache_hint")) as usize;
                let (d, rest) = if m.name == "atom" {
                    self.n(ops, 3)?;
                    (Some(self.dst(&ops[0])?), &ops[1..ops.len() - hint])
                } else {
                    self.n(ops, 2)?;
                    (None, &ops[..ops.len() - hint])
                };
                let addr = self.addr(&rest[0])?;
                let b = self.src(rest.get(1).ok_or_else(|| self.err("missing atom operand"))?, ty)?;
                let c = if op == AtomOp::Cas {
                    Some(self.src(rest.get(2).ok_or_else(|| self.err("cas needs 2 values"))?, ty)?)
                } else {
                    None
                };
                let ok = matches!(
                    (op, ty),
                    (
                        _,
                        ScalarType::B32
                            | ScalarType::U32
                            | ScalarType::S32
                            | ScalarType::B64
                            | ScalarType::U64
                            | ScalarType::S64
                    ) | (AtomOp::Add | AtomOp::Exch | AtomOp::Min | AtomOp::Max, ScalarType::F32)
                        | (AtomOp::Add, ScalarType::F64 | ScalarType::F16x2 | ScalarType::F16 | ScalarType::Bf16x2)
                );
                if !ok {
                    return Err(self.unsup(format!("`{}`", r.opcode)));
                }
                Kind::Atom { space, op, ty, d, addr, b, c }
            }
            "cp" => {
                if m.has("async") && m.has("mbarrier") && m.has("arrive") {
                    self.n(ops, 1)?;
                    class = Class::Sync;
                    return Ok(Inst {
                        kind: Kind::CpMbarArrive { noinc: m.has("noinc"), addr: self.addr(&ops[0])? },
                        guard: r.guard,
                        line: r.line,
                        class,
                        collective,
                        wg: false,
                    });
                }
                if m.has("async") && m.has("bulk") {
                    class = Class::Global;
                    let kind = if m.mods.get(2) == Some(&"prefetch") && !m.has("tensor") {
                        self.bulk_prefetch_l2(&m, &r.opcode, ops)?
                    } else if m.has("tensor") {
                        self.cp_async_bulk_tensor(&m, &r.opcode, ops)?
                    } else {
                        self.cp_async_bulk(&m, &r.opcode, ops)?
                    };
                    return Ok(Inst { kind, guard: r.guard, line: r.line, class, collective, wg: false });
                }
                if !m.has("async") || m.mods.iter().any(|s| s.starts_with("bulk") || *s == "mbarrier") {
                    return Err(self.unsup(format!("`{}`", r.opcode)));
                }
                class = Class::Sync;
                if m.has("commit_group") {
                    Kind::CpCommit
                } else if m.has("wait_group") {
                    self.n(ops, 1)?;
                    match ops[0] {
                        ROp::Int(v) => Kind::CpWait(v as u32),
                        _ => return Err(self.err("cp.async.wait_group needs an immediate")),
                    }
                } else if m.has("wait_all") {
                    Kind::CpWaitAll
                } else {
                    self.n(ops, 3)?;
                    class = Class::Global;
                    let size = match ops[2] {
                        ROp::Int(v) if matches!(v, 4 | 8 | 16) => v as u32,
                        _ => return Err(self.err("cp.async size must be 4, 8 or 16")),
                    };
                    if m.has("cg") && size != 16 {
                        return Err(self.err("cp.async.cg needs size 16"));
                    }
                    let hint = m.mods.iter().any(|s| s.starts_with("L2::cache_hint")) as usize;
                    let src_size = if ops.len() - hint >= 4 { Some(self.src(&ops[3], ScalarType::U32)?) } else { None };
                    Kind::CpAsync { dst: self.addr(&ops[0])?, src: self.addr(&ops[1])?, size, src_size }
                }
            }
            "mbarrier" => {
                class = Class::Sync;
                self.mbarrier(&m, &r.opcode, ops)?
            }
            "setmaxnreg" => {
                // `setmaxnreg.{inc,dec}.sync.aligned.u32 n` (PTX ISA "setmaxnreg", sm_90a):
                // a warpgroup's request to the register allocator, no effect on values
                // here; the operand is checked (24..=256, a multiple of 8) at load time,
                // the warpgroup-wide execution and the count order when it executes
                // (`step::set_max_nreg`). `.sync.aligned`: a lane rendezvous like the
                // other warp collectives.
                class = Class::Sync;
                collective = true;
                let ok = m.mods.len() == 4
                    && matches!(m.mods[0], "inc" | "dec")
                    && m.mods[1..] == ["sync", "aligned", "u32"];
                if !ok {
                    return Err(self.unsup(format!("`{}`", r.opcode)));
                }
                self.n(ops, 1)?;
                // The register counts setmaxnreg accepts: 24 to 256, multiples of 8.
                const SETMAXNREG_REGS: std::ops::RangeInclusive<u64> = 24..=256;
                const SETMAXNREG_STEP: u64 = 8;
                match ops[0] {
                    ROp::Int(n) if SETMAXNREG_REGS.contains(&n) && n % SETMAXNREG_STEP == 0 => {
                        Kind::SetMaxNReg { inc: m.mods[0] == "inc", regs: n as u32 }
                    }
                    ref o => return Err(self.err(format!("setmaxnreg takes 24..=256, a multiple of 8; found {o:?}"))),
                }
            }
            "bar" | "barrier" => {
                class = Class::Sync;
                if m.has("warp") {
                    self.n(ops, 1)?;
                    collective = true;
                    Kind::WarpSync { mask: self.src(&ops[0], ScalarType::U32)? }
                } else if m.has("red") {
                    return Err(self.unsup("bar.red"));
                } else {
                    let arrive = m.has("arrive");
                    let id = match ops.first() {
                        Some(o) => self.src(o, ScalarType::U32)?,
                        None => Operand::Imm(0),
                    };
                    let count = ops.get(1).map(|o| self.src(o, ScalarType::U32)).transpose()?;
                    Kind::Bar { id, count, arrive }
                }
            }
            "bra" | "brx" => {
                if m.name == "brx" {
                    return Err(self.unsup("brx.idx"));
                }
                self.n(ops, 1)?;
                class = Class::Control;
                let ROp::Name(l) = &ops[0] else {
                    return Err(self.err("bra needs a label"));
                };
                let target = *self.labels.get(l).ok_or_else(|| self.err(format!("unknown label `{l}`")))?;
                Kind::Bra { target }
            }
            "ret" | "exit" => {
                class = Class::Control;
                Kind::Exit
            }
            "trap" => {
                class = Class::Control;
                Kind::Trap
            }
            "fence"
                if m.mods.first() == Some(&"proxy")
                    && m.mods.get(1) == Some(&"async")
                    && m.mods[2..].iter().all(|x| matches!(*x, "shared::cta" | "shared::cluster")) =>
            {
                // `fence.proxy.async{.shared::cta,.shared::cluster}` orders shared-memory
                // accesses across the generic and async proxies (PTX ISA "membar/fence":
                // fence.proxy; "Memory consistency model: proxies"). `.global` covers only
                // global memory and stays a no-op here.
                class = Class::Sync;
                Kind::ProxyFence
            }
            "griddepcontrol" if m.has("wait") => {
                class = Class::Sync;
                Kind::GridDepWait
            }
            "griddepcontrol" if m.has("launch_dependents") => {
                class = Class::Sync;
                Kind::GridDepLaunch
            }
            "membar" | "fence" | "prefetch" | "prefetchu" | "nanosleep" | "pmevent" => {
                class = if m.name.starts_with("prefetch") { Class::Global } else { Class::Sync };
                Kind::Nop
            }
            "wgmma" => {
                class = Class::Sync;
                collective = true;
                if m.has("fence") {
                    Kind::WgFence
                } else if m.has("commit_group") {
                    Kind::WgCommit
                } else if m.has("wait_group") {
                    self.n(ops, 1)?;
                    match ops[0] {
                        ROp::Int(v) => Kind::WgWait(v as u32),
                        _ => return Err(self.err("wgmma.wait_group needs an immediate")),
                    }
                } else if m.has("mma_async") {
                    class = Class::Tensor;
                    self.wgmma(&m, &tys, ops)?
                } else {
                    return Err(unknown());
                }
            }
            "createpolicy" => {
                self.n(ops, 1)?;
                class = Class::Other;
                Kind::CreatePolicy { d: self.dst(&ops[0])? }
            }
            "activemask" => {
                self.n(ops, 1)?;
                class = Class::Sync;
                Kind::ActiveMask { d: self.dst(&ops[0])? }
            }
            "shfl" => {
                self.n(ops, 5)?;
                class = Class::Sync;
                collective = true;
                let mode = if m.has("up") {
                    ShflMode::Up
                } else if m.has("down") {
                    ShflMode::Down
                } else if m.has("bfly") {
                    ShflMode::Bfly
                } else if m.has("idx") {
                    ShflMode::Idx
                } else {
                    return Err(self.err("shfl without a mode"));
                };
                let (d, dp) = match &ops[0] {
                    ROp::Pair(a, b) => (self.dst(a)?, self.dst_opt(b)?),
                    o => (self.dst(o)?, None),
                };
                Kind::Shfl {
                    mode,
                    d,
                    dp,
                    a: self.src(&ops[1], ScalarType::B32)?,
                    b: self.src(&ops[2], ScalarType::B32)?,
                    c: self.src(&ops[3], ScalarType::B32)?,
                    mask: self.src(&ops[4], ScalarType::B32)?,
                }
            }
            "vote" => {
                self.n(ops, 3)?;
                class = Class::Sync;
                collective = true;
                let mode = if m.has("all") {
                    VoteMode::All
                } else if m.has("any") {
                    VoteMode::Any
                } else if m.has("uni") {
                    VoteMode::Uni
                } else if m.has("ballot") {
                    VoteMode::Ballot
                } else {
                    return Err(self.err("vote without a mode"));
                };
                let (a, neg) = self.pred_src(&ops[1])?;
                Kind::Vote { mode, d: self.dst(&ops[0])?, a, neg, mask: self.src(&ops[2], ScalarType::B32)? }
            }
            "redux" => {
                self.n(ops, 3)?;
                class = Class::Sync;
                collective = true;
                let op = m
                    .mods
                    .iter()
                    .find_map(|s| {
                        Some(match *s {
                            "add" => ReduxOp::Add,
                            "min" => ReduxOp::Min,
                            "max" => ReduxOp::Max,
                            "and" => ReduxOp::And,
                            "or" => ReduxOp::Or,
                            "xor" => ReduxOp::Xor,
                            _ => return None,
                        })
                    })
                    .ok_or_else(|| self.err("redux without an operation"))?;
                if ty.is_float() {
                    return Err(self.unsup("redux on floats"));
                }
                Kind::Redux {
                    op,
                    signed: ty == ScalarType::S32,
                    d: self.dst(&ops[0])?,
                    a: self.src(&ops[1], ty)?,
                    mask: self.src(&ops[2], ScalarType::B32)?,
                }
            }
            "mma" => {
                self.n(ops, 4)?;
                class = Class::Tensor;
                collective = true;
                let shape = m
                    .mods
                    .iter()
                    .find(|s| s.starts_with('m') && s.contains('n') && s.contains('k'))
                    .ok_or_else(|| self.err("mma without a shape"))?;
                let parse_shape = || -> Option<(u32, u32, u32)> {
                    let s = shape.strip_prefix('m')?;
                    let (mm, rest) = s.split_once('n')?;
                    let (nn, kk) = rest.split_once('k')?;
                    Some((mm.parse().ok()?, nn.parse().ok()?, kk.parse().ok()?))
                };
                let (mm, nn, kk) = parse_shape().ok_or_else(|| self.err(format!("bad mma shape `{shape}`")))?;
                if tys.len() != 4 {
                    return Err(self.unsup(format!("`{}` (expected 4 types)", r.opcode)));
                }
                let desc = MmaDesc {
                    m: mm,
                    n: nn,
                    k: kk,
                    d: tys[0],
                    a: tys[1],
                    b: tys[2],
                    c: tys[3],
                    satfinite: m.has("satfinite"),
                };
                let ds = self
                    .dst_list(&ops[0])?
                    .into_iter()
                    .map(|x| x.ok_or_else(|| self.err("`_` in mma destination")))
                    .collect::<Result<Vec<_>, _>>()?;
                Kind::Mma {
                    desc,
                    ds,
                    a: self.src_list(&ops[1], ScalarType::B32)?,
                    b: self.src_list(&ops[2], ScalarType::B32)?,
                    c: self.src_list(&ops[3], ScalarType::B32)?,
                }
            }
            "ldmatrix" => {
                self.n(ops, 2)?;
                class = Class::Shared;
                collective = true;
                let count = if m.has("x4") {
                    4
                } else if m.has("x2") {
                    2
                } else {
                    1
                };
                if !m.has("m8n8") {
                    return Err(self.unsup(format!("`{}`", r.opcode)));
                }
                let ds = self
                    .dst_list(&ops[0])?
                    .into_iter()
                    .map(|x| x.ok_or_else(|| self.err("`_` in ldmatrix destination")))
                    .collect::<Result<Vec<_>, _>>()?;
                if ds.len() != count as usize {
                    return Err(self.err("ldmatrix register count does not match .xN"));
                }
                Kind::Ldmatrix { count, trans: m.has("trans"), ds, addr: self.addr(&ops[1])? }
            }
            "dp4a" | "dp2a" => {
                self.n(ops, 4)?;
                if tys.len() != 2 {
                    return Err(self.err("dp4a/dp2a need two operand types"));
                }
                Kind::Dp {
                    two: m.name == "dp2a",
                    hi: m.has("hi"),
                    sa: tys[0].is_signed_int(),
                    sb: tys[1].is_signed_int(),
                    d: self.dst(&ops[0])?,
                    a: self.src(&ops[1], ScalarType::B32)?,
                    b: self.src(&ops[2], ScalarType::B32)?,
                    c: self.src(&ops[3], ScalarType::B32)?,
                }
            }
            "shf" => {
                self.n(ops, 4)?;
                Kind::Shf {
                    left: m.has("l"),
                    clamp: m.has("clamp"),
                    d: self.dst(&ops[0])?,
                    a: self.src(&ops[1], ScalarType::B32)?,
                    b: self.src(&ops[2], ScalarType::B32)?,
                    c: self.src(&ops[3], ScalarType::U32)?,
                }
            }
            "bfind" => {
                self.n(ops, 2)?;
                Kind::Bfind { ty, shiftamt: m.has("shiftamt"), d: self.dst(&ops[0])?, a: self.src(&ops[1], ty)? }
            }
            "copysign" => {
                self.n(ops, 3)?;
                Kind::Copysign { ty, d: self.dst(&ops[0])?, a: self.src(&ops[1], ty)?, b: self.src(&ops[2], ty)? }
            }
            "testp" => {
                self.n(ops, 2)?;
                let op = if m.has("finite") {
                    TestOp::Finite
                } else if m.has("infinite") {
                    TestOp::Infinite
                } else if m.has("number") {
                    TestOp::Number
                } else if m.has("notanumber") {
                    TestOp::NotANumber
                } else if m.has("normal") {
                    TestOp::Normal
                } else if m.has("subnormal") {
                    TestOp::Subnormal
                } else {
                    return Err(self.err("testp without a property"));
                };
                Kind::Testp { op, ty, d: self.dst(&ops[0])?, a: self.src(&ops[1], ty)? }
            }
            "isspacep" => {
                self.n(ops, 2)?;
                let space = m.space().ok_or_else(|| self.err("isspacep without a space"))?;
                Kind::Isspacep { space, d: self.dst(&ops[0])?, a: self.src(&ops[1], ScalarType::U64)? }
            }
            "discard" | "applypriority" => {
                class = Class::Global;
                Kind::Nop
            }
            "call" => return Err(self.unsup("call (not inlined)")),
            _ => return Err(unknown()),
        };
        Ok(Inst { kind, guard: r.guard, line: r.line, class, collective, wg: false })
    }
}
