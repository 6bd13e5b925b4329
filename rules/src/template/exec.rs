//! Executes a parsed template against an alert's data, with Go's scoping (a variable lives
//! to the `end` of the block that declared it) and Go's printing.

use super::funcs;
use super::parse::{Node, Operand, Pipeline};
use super::value::Val;
use super::Context;

struct State<'c, 'a> {
    context: &'c Context<'a>,
    variables: Vec<(String, Val)>,
    out: String,
}

pub(crate) fn execute(nodes: &[Node], context: &Context<'_>) -> Result<String, String> {
    let mut state = State {
        context,
        variables: vec![
            ("$".into(), Val::Root),
            ("$labels".into(), Val::Map(context.labels.clone())),
            (
                "$externalLabels".into(),
                Val::Map(context.external_labels.clone()),
            ),
            (
                "$externalURL".into(),
                Val::Str(context.external_url.to_string()),
            ),
            ("$value".into(), Val::Float(context.value)),
        ],
        out: String::new(),
    };
    state.walk(nodes, &Val::Root)?;
    Ok(state.out)
}

impl State<'_, '_> {
    fn walk(&mut self, nodes: &[Node], dot: &Val) -> Result<(), String> {
        for node in nodes {
            match node {
                Node::Text(text) => self.out.push_str(text),
                Node::Action(pipeline) => {
                    let value = self.pipeline(pipeline, dot)?;
                    if pipeline.variables.is_empty() {
                        self.out.push_str(&value.print());
                    }
                }
                Node::If {
                    branches,
                    otherwise,
                } => {
                    let mark = self.variables.len();
                    let mut taken = false;
                    for (condition, body) in branches {
                        if self.pipeline(condition, dot)?.truthy() {
                            self.walk(body, dot)?;
                            taken = true;
                            break;
                        }
                    }
                    if !taken {
                        self.walk(otherwise, dot)?;
                    }
                    self.variables.truncate(mark);
                }
                Node::With {
                    pipeline,
                    body,
                    otherwise,
                } => {
                    let mark = self.variables.len();
                    let value = self.pipeline(pipeline, dot)?;
                    if value.truthy() {
                        self.walk(body, &value)?;
                    } else {
                        self.walk(otherwise, dot)?;
                    }
                    self.variables.truncate(mark);
                }
                Node::Range {
                    pipeline,
                    body,
                    otherwise,
                } => {
                    let mark = self.variables.len();
                    let declared = pipeline.variables.clone();
                    let plain = Pipeline {
                        variables: Vec::new(),
                        declares: false,
                        commands: pipeline.commands.clone(),
                    };
                    let items: Vec<(Val, Val)> = match self.pipeline(&plain, dot)? {
                        Val::Samples(samples) => samples
                            .into_iter()
                            .enumerate()
                            .map(|(i, s)| (Val::Int(i as i64), Val::Sample(s)))
                            .collect(),
                        Val::Map(map) => map
                            .into_iter()
                            .map(|(k, v)| (Val::Str(k), Val::Str(v)))
                            .collect(),
                        Val::Nil => Vec::new(),
                        other => return Err(format!("range can't iterate over {}", other.print())),
                    };
                    if items.is_empty() {
                        self.walk(otherwise, dot)?;
                    }
                    for (key, element) in items {
                        let inner = self.variables.len();
                        match declared.as_slice() {
                            [] => {}
                            [one] => self.variables.push((one.clone(), element.clone())),
                            [first, second, ..] => {
                                self.variables.push((first.clone(), key));
                                self.variables.push((second.clone(), element.clone()));
                            }
                        }
                        self.walk(body, &element)?;
                        self.variables.truncate(inner);
                    }
                    self.variables.truncate(mark);
                }
            }
        }
        Ok(())
    }

    fn pipeline(&mut self, pipeline: &Pipeline, dot: &Val) -> Result<Val, String> {
        let mut value: Option<Val> = None;
        for command in &pipeline.commands {
            value = Some(self.command(command, dot, value)?);
        }
        let value = value.unwrap_or(Val::Nil);
        for name in &pipeline.variables {
            if pipeline.declares {
                self.variables.push((name.clone(), value.clone()));
            } else {
                let slot = self
                    .variables
                    .iter_mut()
                    .rev()
                    .find(|(n, _)| n == name)
                    .ok_or(format!("undefined variable: {name}"))?;
                slot.1 = value.clone();
            }
        }
        Ok(value)
    }

    fn command(
        &mut self,
        command: &[Operand],
        dot: &Val,
        piped: Option<Val>,
    ) -> Result<Val, String> {
        let (first, rest) = command.split_first().ok_or("empty command")?;
        if let Operand::Function(name) = first {
            let mut args = Vec::with_capacity(rest.len() + 1);
            for operand in rest {
                args.push(self.operand(operand, dot)?);
            }
            args.extend(piped);
            return funcs::call(name, args, self.context);
        }
        if !rest.is_empty() || piped.is_some() {
            return Err(format!("can't give argument to non-function {first:?}"));
        }
        self.operand(first, dot)
    }

    fn operand(&mut self, operand: &Operand, dot: &Val) -> Result<Val, String> {
        match operand {
            Operand::Field(fields) => fields
                .iter()
                .try_fold(dot.clone(), |v, f| self.field(&v, f)),
            Operand::Variable(name, fields) => {
                let value = self
                    .variables
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                    .ok_or(format!("undefined variable {name:?}"))?;
                fields.iter().try_fold(value, |v, f| self.field(&v, f))
            }
            Operand::Function(name) => funcs::call(name, Vec::new(), self.context),
            Operand::String(s) => Ok(Val::Str(s.clone())),
            Operand::Int(i) => Ok(Val::Int(*i)),
            Operand::Float(f) => Ok(Val::Float(*f)),
            Operand::Bool(b) => Ok(Val::Bool(*b)),
            Operand::Nil => Ok(Val::Nil),
            Operand::Group(pipeline, fields) => {
                let value = self.pipeline(pipeline, dot)?;
                fields.iter().try_fold(value, |v, f| self.field(&v, f))
            }
        }
    }

    fn field(&self, value: &Val, name: &str) -> Result<Val, String> {
        Ok(match (value, name) {
            (Val::Root, "Labels") => Val::Map(self.context.labels.clone()),
            (Val::Root, "ExternalLabels") => Val::Map(self.context.external_labels.clone()),
            (Val::Root, "ExternalURL") => Val::Str(self.context.external_url.to_string()),
            (Val::Root, "Value") => Val::Float(self.context.value),
            (Val::Sample(s), "Labels") => Val::Map(s.labels.clone()),
            (Val::Sample(s), "Value") => Val::Float(s.value),
            // Prometheus's label maps are map[string]string: a missing key is "".
            (Val::Map(map), key) => Val::Str(map.get(key).cloned().unwrap_or_default()),
            (other, name) => {
                return Err(format!(
                    "can't evaluate field {name} in type {}",
                    other.type_name()
                ))
            }
        })
    }
}
