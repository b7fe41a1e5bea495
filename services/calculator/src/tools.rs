//! The calculator's MCP tools.
//!
//! Every tool takes IEEE 754 double-precision numbers and returns a
//! [`Calculation`] as structured content (MCP 2025-06-18, Server Features
//! §Tools, Structured Content), with a text rendering for older clients.
//! Results that are not finite numbers (division by zero, overflow to
//! infinity, NaN) and out-of-domain inputs (square root of a negative number)
//! are tool errors (`isError: true`) with a message saying what went wrong, so
//! the model can correct itself; arguments of the wrong type are rejected by
//! rmcp with the JSON-RPC invalid-params error (`-32602`).
//!
//! The library's session tools (`health_check`, `get_user_sessions`,
//! `get_session_analytics`) are served beside these by `mcp-session`.

use std::sync::OnceLock;

use mcp_session::tools::ServiceTools;
use rmcp::{
    Json, ServerHandler,
    handler::server::wrapper::Parameters,
    schemars::{self, JsonSchema},
    tool, tool_handler, tool_router,
};
use serde::{Deserialize, Serialize};

/// Two operands.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Operands {
    /// The first operand (left-hand side), e.g. `12.5`.
    pub a: f64,
    /// The second operand (right-hand side), e.g. `4`.
    pub b: f64,
}

/// A division: dividend and divisor.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Division {
    /// The dividend: the number being divided, e.g. `10` in 10 ÷ 4.
    pub a: f64,
    /// The divisor: the number to divide by, e.g. `4` in 10 ÷ 4. Must not be 0.
    pub b: f64,
}

/// A power: base and exponent.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Power {
    /// The base, e.g. `2` in 2^10.
    pub base: f64,
    /// The exponent, e.g. `10` in 2^10; may be negative or fractional.
    pub exponent: f64,
}

/// One operand.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Operand {
    /// The number to operate on, e.g. `16`.
    pub x: f64,
}

/// A number to round and the decimal places to keep.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Rounding {
    /// The number to round, e.g. `3.14159`.
    pub x: f64,
    /// Decimal places to keep, 0 to 15 (default 0: round to an integer).
    #[serde(default)]
    pub decimals: u8,
}

/// A list of numbers.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Numbers {
    /// The numbers, at least one, e.g. `[3, 1, 4, 1, 5]`.
    pub values: Vec<f64>,
}

/// The result of a calculation, as `structuredContent`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Calculation {
    /// The operation performed, e.g. `add`.
    pub operation: String,
    /// The calculation written out, e.g. `2 + 40 = 42`.
    pub expression: String,
    /// The result.
    pub result: f64,
}

/// What every tool returns: a calculation, or the reason there is none.
type ToolResult = Result<Json<Calculation>, String>;

/// Formats a number without a trailing `.0` for integers.
fn num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// Wraps a result, or explains why it is not a finite number.
fn finish(operation: &str, expression: String, result: f64) -> ToolResult {
    if result.is_nan() {
        return Err(format!(
            "{operation}: {expression} is not a number (NaN); check the inputs"
        ));
    }
    if result.is_infinite() {
        return Err(format!(
            "{operation}: {expression} overflows to infinity: the result is beyond ±{:e}",
            f64::MAX
        ));
    }
    let expression = format!("{expression} = {}", num(result));
    Ok(Json(Calculation {
        operation: operation.to_owned(),
        expression,
        result,
    }))
}

/// The calculator MCP server: stateless arithmetic tools.
#[derive(Debug, Clone)]
pub struct Calculator {
    tools: ServiceTools<Self>,
}

impl Default for Calculator {
    fn default() -> Self {
        Self::new()
    }
}

#[tool_router]
impl Calculator {
    /// A calculator with all its tools, plus the session tools of
    /// `mcp-session` (add `.without_session_tools()` to opt out of them).
    ///
    /// The tools are built at the first call and shared by every handler
    /// after it: building them (schemas rewritten to JSON Schema 2020-12,
    /// names checked) costs many times what serving a request does, and a
    /// handler is made for every session and every stateless request.
    pub fn new() -> Self {
        static TOOLS: OnceLock<ServiceTools<Calculator>> = OnceLock::new();
        Self {
            tools: TOOLS
                .get_or_init(|| ServiceTools::new(Self::tool_router()))
                .clone(),
        }
    }

    /// The calculator's own tools alone, without the session tools.
    #[must_use]
    pub fn without_session_tools(self) -> Self {
        Self {
            tools: self.tools.without_session_tools(),
        }
    }

    #[tool(
        description = "Add two numbers: returns a + b. Use for sums and totals, e.g. a=2, b=40 gives 42.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    fn add(
        &self,
        Parameters(Operands { a, b }): Parameters<Operands>,
    ) -> Result<Json<Calculation>, String> {
        finish("add", format!("{} + {}", num(a), num(b)), a + b)
    }

    #[tool(
        description = "Subtract the second number from the first: returns a - b. Use for differences, e.g. a=10, b=3 gives 7.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    fn subtract(
        &self,
        Parameters(Operands { a, b }): Parameters<Operands>,
    ) -> Result<Json<Calculation>, String> {
        finish("subtract", format!("{} - {}", num(a), num(b)), a - b)
    }

    #[tool(
        description = "Multiply two numbers: returns a × b. Use for products, scaling and areas, e.g. a=6, b=7 gives 42.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    fn multiply(
        &self,
        Parameters(Operands { a, b }): Parameters<Operands>,
    ) -> Result<Json<Calculation>, String> {
        finish("multiply", format!("{} × {}", num(a), num(b)), a * b)
    }

    #[tool(
        description = "Divide a by b: returns a ÷ b as a decimal number, e.g. a=10, b=4 gives 2.5. Division by zero is an error. For the remainder of a division use `modulo`.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    fn divide(
        &self,
        Parameters(Division { a, b }): Parameters<Division>,
    ) -> Result<Json<Calculation>, String> {
        if b == 0.0 {
            return Err(format!(
                "divide: division by zero ({} ÷ 0) is undefined; use a non-zero divisor",
                num(a)
            ));
        }
        finish("divide", format!("{} ÷ {}", num(a), num(b)), a / b)
    }

    #[tool(
        description = "Remainder of a divided by b (a mod b), with the sign of a, e.g. a=17, b=5 gives 2. The divisor must not be zero.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    fn modulo(
        &self,
        Parameters(Division { a, b }): Parameters<Division>,
    ) -> Result<Json<Calculation>, String> {
        if b == 0.0 {
            return Err(format!(
                "modulo: the remainder of a division by zero ({} mod 0) is undefined; use a non-zero divisor",
                num(a)
            ));
        }
        finish("modulo", format!("{} mod {}", num(a), num(b)), a % b)
    }

    #[tool(
        description = "Raise base to the power exponent: returns base^exponent, e.g. base=2, exponent=10 gives 1024. Negative exponents give reciprocals (2^-1 = 0.5); fractional exponents give roots (9^0.5 = 3) and need a non-negative base.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    fn power(
        &self,
        Parameters(Power { base, exponent }): Parameters<Power>,
    ) -> Result<Json<Calculation>, String> {
        let expression = format!("{}^{}", num(base), num(exponent));
        if base < 0.0 && exponent.fract() != 0.0 {
            return Err(format!(
                "power: {expression} has no real value: a negative base needs an integer exponent"
            ));
        }
        if base == 0.0 && exponent < 0.0 {
            return Err(format!(
                "power: {expression} divides by zero: zero has no negative powers"
            ));
        }
        finish("power", expression, base.powf(exponent))
    }

    #[tool(
        description = "Square root of x: returns √x for x ≥ 0, e.g. x=16 gives 4. Negative numbers have no real square root and are an error.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    fn sqrt(
        &self,
        Parameters(Operand { x }): Parameters<Operand>,
    ) -> Result<Json<Calculation>, String> {
        if x < 0.0 {
            return Err(format!(
                "sqrt: √{} is not a real number: the square root needs x ≥ 0",
                num(x)
            ));
        }
        finish("sqrt", format!("√{}", num(x)), x.sqrt())
    }

    #[tool(
        description = "Absolute value of x: returns |x|, its distance from zero, e.g. x=-7.5 gives 7.5.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    fn absolute(
        &self,
        Parameters(Operand { x }): Parameters<Operand>,
    ) -> Result<Json<Calculation>, String> {
        finish("absolute", format!("|{}|", num(x)), x.abs())
    }

    #[tool(
        description = "Round x to a number of decimal places (half away from zero), e.g. x=3.14159, decimals=2 gives 3.14; decimals=0 rounds to an integer.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    fn round(
        &self,
        Parameters(Rounding { x, decimals }): Parameters<Rounding>,
    ) -> Result<Json<Calculation>, String> {
        if decimals > 15 {
            return Err(format!(
                "round: {decimals} decimal places is more than a double keeps; use 0 to 15"
            ));
        }
        let scale = 10f64.powi(i32::from(decimals));
        finish(
            "round",
            format!("round({}, {decimals})", num(x)),
            (x * scale).round() / scale,
        )
    }

    #[tool(
        description = "Sum of a list of numbers: returns values[0] + values[1] + …, e.g. [1, 2, 3.5] gives 6.5. Use instead of chaining `add` for more than two numbers.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    fn sum(
        &self,
        Parameters(Numbers { values }): Parameters<Numbers>,
    ) -> Result<Json<Calculation>, String> {
        if values.is_empty() {
            return Err("sum: give at least one number in `values`".into());
        }
        let listed: Vec<String> = values.iter().copied().map(num).collect();
        finish(
            "sum",
            format!("sum({})", listed.join(", ")),
            values.iter().sum(),
        )
    }

    #[tool(
        description = "Arithmetic mean (average) of a list of numbers: their sum divided by their count, e.g. [2, 4, 9] gives 5.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    fn average(
        &self,
        Parameters(Numbers { values }): Parameters<Numbers>,
    ) -> Result<Json<Calculation>, String> {
        if values.is_empty() {
            return Err("average: the mean of no numbers is undefined; give at least one".into());
        }
        let listed: Vec<String> = values.iter().copied().map(num).collect();
        finish(
            "average",
            format!("mean({})", listed.join(", ")),
            values.iter().sum::<f64>() / values.len() as f64,
        )
    }
}

#[tool_handler(
    router = self.tools,
    name = "calculator",
    instructions = "Arithmetic on double-precision numbers. Each tool returns the result \
        as structured content {operation, expression, result}. Errors such as \
        division by zero come back as tool errors with an explanation. \
        health_check and get_user_sessions describe the service and your sessions."
)]
impl ServerHandler for Calculator {}

#[cfg(test)]
mod tests {
    use super::*;

    fn calc() -> Calculator {
        Calculator::new()
    }

    fn ok(result: ToolResult) -> f64 {
        result.expect("a result").0.result
    }

    #[test]
    fn arithmetic() {
        let c = calc();
        assert_eq!(ok(c.add(Parameters(Operands { a: 2.0, b: 40.0 }))), 42.0);
        assert_eq!(
            ok(c.subtract(Parameters(Operands { a: 10.0, b: 3.0 }))),
            7.0
        );
        assert_eq!(
            ok(c.multiply(Parameters(Operands { a: 6.0, b: 7.0 }))),
            42.0
        );
        assert_eq!(ok(c.divide(Parameters(Division { a: 10.0, b: 4.0 }))), 2.5);
        assert_eq!(
            ok(c.modulo(Parameters(Division { a: -17.0, b: 5.0 }))),
            -2.0
        );
        assert_eq!(
            ok(c.power(Parameters(Power {
                base: 2.0,
                exponent: 10.0
            }))),
            1024.0
        );
        assert_eq!(
            ok(c.power(Parameters(Power {
                base: -2.0,
                exponent: 3.0
            }))),
            -8.0
        );
        assert_eq!(ok(c.sqrt(Parameters(Operand { x: 16.0 }))), 4.0);
        assert_eq!(ok(c.absolute(Parameters(Operand { x: -7.5 }))), 7.5);
        assert_eq!(
            ok(c.round(Parameters(Rounding {
                x: 1.23456,
                decimals: 2
            }))),
            1.23
        );
        assert_eq!(
            ok(c.sum(Parameters(Numbers {
                values: vec![1.0, 2.0, 3.5]
            }))),
            6.5
        );
        assert_eq!(
            ok(c.average(Parameters(Numbers {
                values: vec![2.0, 4.0, 9.0]
            }))),
            5.0
        );
    }

    #[test]
    fn expressions_read_naturally() {
        let result = calc()
            .add(Parameters(Operands { a: 2.0, b: 40.0 }))
            .unwrap()
            .0;
        assert_eq!(result.expression, "2 + 40 = 42");
        assert_eq!(result.operation, "add");
    }

    #[test]
    fn undefined_results_are_explained() {
        let c = calc();
        let cases = [
            (
                c.divide(Parameters(Division { a: 1.0, b: 0.0 })),
                "division by zero",
            ),
            (
                c.modulo(Parameters(Division { a: 1.0, b: 0.0 })),
                "division by zero",
            ),
            (c.sqrt(Parameters(Operand { x: -4.0 })), "not a real number"),
            (
                c.multiply(Parameters(Operands {
                    a: f64::MAX,
                    b: 10.0,
                })),
                "infinity",
            ),
            (
                c.power(Parameters(Power {
                    base: 10.0,
                    exponent: 400.0,
                })),
                "infinity",
            ),
            (
                c.power(Parameters(Power {
                    base: -8.0,
                    exponent: 0.5,
                })),
                "integer exponent",
            ),
            (
                c.power(Parameters(Power {
                    base: 0.0,
                    exponent: -1.0,
                })),
                "divides by zero",
            ),
            (
                c.add(Parameters(Operands {
                    a: f64::INFINITY,
                    b: f64::NEG_INFINITY,
                })),
                "NaN",
            ),
            (
                c.round(Parameters(Rounding {
                    x: 1.0,
                    decimals: 16,
                })),
                "0 to 15",
            ),
            (
                c.sum(Parameters(Numbers { values: vec![] })),
                "at least one",
            ),
            (
                c.average(Parameters(Numbers { values: vec![] })),
                "at least one",
            ),
        ];
        for (result, expected) in cases {
            let Err(message) = result else {
                panic!("expected an error containing {expected}")
            };
            assert!(message.contains(expected), "{message} lacks {expected}");
        }
    }
}
