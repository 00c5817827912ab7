//! Every span of a declaration, for moving it when the text before it
//! changes length: what lets an editor re-parse only the declarations an
//! edit touches and keep the others ([`super::incremental`]).
//!
//! Each implementation takes its value apart without `..`, so a field added
//! to the AST does not compile until it is visited here (or said to hold no
//! span).

use super::ast::*;
use crate::diagnostic::Diagnostic;
use crate::source::Span;

/// A value whose spans can be visited, to be changed in place.
pub trait Spans {
    fn spans_mut(&mut self, f: &mut dyn FnMut(&mut Span));
}

/// Moves every span of `value` by `delta` bytes.
pub fn shift(value: &mut impl Spans, delta: isize) {
    if delta == 0 {
        return;
    }
    value.spans_mut(&mut |span| {
        span.start = (span.start as isize + delta) as u32;
    });
}

impl Spans for Span {
    fn spans_mut(&mut self, f: &mut dyn FnMut(&mut Span)) {
        f(self)
    }
}

impl<T: Spans> Spans for Vec<T> {
    fn spans_mut(&mut self, f: &mut dyn FnMut(&mut Span)) {
        for value in self {
            value.spans_mut(f);
        }
    }
}

impl<T: Spans> Spans for Option<T> {
    fn spans_mut(&mut self, f: &mut dyn FnMut(&mut Span)) {
        if let Some(value) = self {
            value.spans_mut(f);
        }
    }
}

impl<T: Spans> Spans for Box<T> {
    fn spans_mut(&mut self, f: &mut dyn FnMut(&mut Span)) {
        (**self).spans_mut(f);
    }
}

impl Spans for (&'static str, Span) {
    fn spans_mut(&mut self, f: &mut dyn FnMut(&mut Span)) {
        f(&mut self.1)
    }
}

impl Spans for Diagnostic {
    fn spans_mut(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let Diagnostic {
            code: _,
            severity: _,
            message: _,
            labels,
            help: _,
            fixes,
        } = self;
        for label in labels {
            f(&mut label.span);
        }
        for fix in fixes {
            for edit in &mut fix.edits {
                f(&mut edit.span);
            }
        }
    }
}

impl Spans for Item {
    fn spans_mut(&mut self, f: &mut dyn FnMut(&mut Span)) {
        match self {
            Item::Secret(decl) => decl.spans_mut(f),
            Item::Role(decl) => decl.spans_mut(f),
            Item::Identity(decl) => decl.spans_mut(f),
            Item::Service(decl) => decl.spans_mut(f),
            Item::Schedule(decl) => decl.spans_mut(f),
            Item::OAuthClient(decl) => decl.spans_mut(f),
            Item::Notify(decl) => decl.spans_mut(f),
        }
    }
}

impl Spans for Name {
    fn spans_mut(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let Name { text: _, span } = self;
        f(span);
    }
}

impl Spans for PlainString {
    fn spans_mut(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let PlainString { value: _, span } = self;
        f(span);
    }
}

impl Spans for SecretDecl {
    fn spans_mut(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let SecretDecl {
            name,
            environment_specific: _,
            locked,
            per_account: _,
            description,
            refreshed_by,
            span,
            layout,
        } = self;
        name.spans_mut(f);
        locked.spans_mut(f);
        description.spans_mut(f);
        refreshed_by.spans_mut(f);
        f(span);
        layout.spans_mut(f);
    }
}

impl Spans for RefreshedBy {
    fn spans_mut(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let RefreshedBy {
            endpoint,
            service_account,
            min_valid,
            span,
        } = self;
        endpoint.spans_mut(f);
        service_account.spans_mut(f);
        min_valid.spans_mut(f);
        f(span);
    }
}

impl Spans for RoleDecl {
    fn spans_mut(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let RoleDecl {
            name,
            grants,
            description,
            span,
            layout,
        } = self;
        name.spans_mut(f);
        grants.spans_mut(f);
        description.spans_mut(f);
        f(span);
        layout.spans_mut(f);
    }
}

impl Spans for Grant {
    fn spans_mut(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let Grant { kind, span } = self;
        match kind {
            GrantKind::Run(pattern) => pattern.spans_mut(f),
            GrantKind::UpdateSecret(name)
            | GrantKind::ReadSecret(name)
            | GrantKind::ReadStatus(name)
            | GrantKind::Connect(name) => name.spans_mut(f),
        }
        f(span);
    }
}

impl Spans for EndpointPattern {
    fn spans_mut(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let EndpointPattern {
            service,
            endpoint,
            span,
        } = self;
        service.spans_mut(f);
        endpoint.spans_mut(f);
        f(span);
    }
}

impl Spans for EndpointRef {
    fn spans_mut(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let EndpointRef {
            service,
            endpoint,
            span,
        } = self;
        service.spans_mut(f);
        endpoint.spans_mut(f);
        f(span);
    }
}

impl Spans for IdentityDecl {
    fn spans_mut(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let IdentityDecl {
            kind: _,
            name,
            roles,
            description,
            span,
            layout,
        } = self;
        name.spans_mut(f);
        roles.spans_mut(f);
        description.spans_mut(f);
        f(span);
        layout.spans_mut(f);
    }
}

impl Spans for OAuthClientDecl {
    fn spans_mut(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let OAuthClientDecl {
            name,
            provider,
            filled: _,
            issuer,
            authorize_url,
            token_url,
            device_authorization_url,
            revocation_url,
            refresh_token_ttl,
            client_id,
            client_auth,
            scopes,
            stores,
            keep_alive,
            expiry_warning,
            per_account: _,
            return_to,
            description,
            span,
            layout,
        } = self;
        name.spans_mut(f);
        provider.spans_mut(f);
        issuer.spans_mut(f);
        authorize_url.spans_mut(f);
        token_url.spans_mut(f);
        device_authorization_url.spans_mut(f);
        revocation_url.spans_mut(f);
        refresh_token_ttl.spans_mut(f);
        client_id.spans_mut(f);
        client_auth.spans_mut(f);
        scopes.spans_mut(f);
        stores.spans_mut(f);
        keep_alive.spans_mut(f);
        expiry_warning.spans_mut(f);
        return_to.spans_mut(f);
        description.spans_mut(f);
        f(span);
        layout.spans_mut(f);
    }
}

impl Spans for ProviderUse {
    fn spans_mut(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let ProviderUse { name, args, span } = self;
        name.spans_mut(f);
        args.spans_mut(f);
        f(span);
    }
}

impl Spans for NotifyDecl {
    fn spans_mut(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let NotifyDecl {
            name,
            url,
            secret,
            events,
            events_span,
            description,
            span,
            layout,
        } = self;
        name.spans_mut(f);
        url.spans_mut(f);
        secret.spans_mut(f);
        events.spans_mut(f);
        events_span.spans_mut(f);
        description.spans_mut(f);
        f(span);
        layout.spans_mut(f);
    }
}

impl Spans for ClientAuth {
    fn spans_mut(&mut self, f: &mut dyn FnMut(&mut Span)) {
        match self {
            ClientAuth::SecretBasic { secret, span } | ClientAuth::SecretPost { secret, span } => {
                secret.spans_mut(f);
                f(span);
            }
            ClientAuth::PrivateKeyJwt(jwt) => jwt.spans_mut(f),
            ClientAuth::None { span } => f(span),
        }
    }
}

impl Spans for PrivateKeyJwt {
    fn spans_mut(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let PrivateKeyJwt {
            client_id,
            key,
            alg,
            kid,
            span,
        } = self;
        client_id.spans_mut(f);
        key.spans_mut(f);
        alg.spans_mut(f);
        kid.spans_mut(f);
        f(span);
    }
}

impl Spans for JwtBearer {
    fn spans_mut(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let JwtBearer {
            key,
            issuer,
            subject,
            audience,
            scope,
            alg,
            kid,
            span,
        } = self;
        key.spans_mut(f);
        issuer.spans_mut(f);
        subject.spans_mut(f);
        audience.spans_mut(f);
        scope.spans_mut(f);
        alg.spans_mut(f);
        kid.spans_mut(f);
        f(span);
    }
}

impl Spans for TokenStores {
    fn spans_mut(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let TokenStores { entries, span } = self;
        entries.spans_mut(f);
        f(span);
    }
}

impl Spans for TokenStore {
    fn spans_mut(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let TokenStore {
            field_name,
            field: _,
            secret,
            span,
        } = self;
        field_name.spans_mut(f);
        secret.spans_mut(f);
        f(span);
    }
}

impl Spans for ServiceDecl {
    fn spans_mut(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let ServiceDecl {
            name,
            vars,
            actions,
            endpoints,
            span,
        } = self;
        name.spans_mut(f);
        vars.spans_mut(f);
        actions.spans_mut(f);
        endpoints.spans_mut(f);
        f(span);
    }
}

impl Spans for VarDecl {
    fn spans_mut(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let VarDecl {
            name,
            type_name,
            span,
        } = self;
        name.spans_mut(f);
        type_name.spans_mut(f);
        f(span);
    }
}

impl Spans for ActionDecl {
    fn spans_mut(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let ActionDecl { name, body, span } = self;
        name.spans_mut(f);
        body.spans_mut(f);
        f(span);
    }
}

impl Spans for EndpointDecl {
    fn spans_mut(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let EndpointDecl {
            name,
            description,
            methods,
            log,
            process,
            on_failure,
            on_recovery,
            params,
            response,
            span,
            layout,
        } = self;
        name.spans_mut(f);
        description.spans_mut(f);
        methods.spans_mut(f);
        if let Some(LogSetting { enabled: _, span }) = log {
            f(span);
        }
        process.spans_mut(f);
        on_failure.spans_mut(f);
        on_recovery.spans_mut(f);
        params.spans_mut(f);
        response.spans_mut(f);
        f(span);
        layout.spans_mut(f);
    }
}

impl Spans for ParamDecl {
    fn spans_mut(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let ParamDecl {
            name,
            type_name,
            optional: _,
            default,
            span,
        } = self;
        name.spans_mut(f);
        type_name.spans_mut(f);
        default.spans_mut(f);
        f(span);
    }
}

impl Spans for ResponseDecl {
    fn spans_mut(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let ResponseDecl {
            status,
            body,
            reveals,
            span,
        } = self;
        status.spans_mut(f);
        match body {
            Some(ResponseBody::Json { fields, span }) => {
                fields.spans_mut(f);
                f(span);
            }
            Some(ResponseBody::Expr(expr)) => expr.spans_mut(f),
            None => {}
        }
        reveals.spans_mut(f);
        f(span);
    }
}

impl Spans for Hook {
    fn spans_mut(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let Hook { body, span } = self;
        body.spans_mut(f);
        f(span);
    }
}

impl Spans for Block {
    fn spans_mut(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let Block { statements, span } = self;
        statements.spans_mut(f);
        f(span);
    }
}

impl Spans for Statement {
    fn spans_mut(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let Statement { kind, span } = self;
        match kind {
            StatementKind::UpdateVariables { assignments } => {
                for Assignment {
                    target,
                    value,
                    span,
                } in assignments
                {
                    target.spans_mut(f);
                    value.spans_mut(f);
                    f(span);
                }
            }
            StatementKind::WebRequest(request) => request.spans_mut(f),
            StatementKind::If(IfStatement {
                condition,
                then_block,
                else_block,
            }) => {
                condition.spans_mut(f);
                then_block.spans_mut(f);
                else_block.spans_mut(f);
            }
            StatementKind::UpdateSecrets {
                updates,
                grouped: _,
            } => {
                for SecretUpdate {
                    secret,
                    value,
                    expires_in,
                    span,
                    layout,
                } in updates
                {
                    secret.spans_mut(f);
                    value.spans_mut(f);
                    expires_in.spans_mut(f);
                    f(span);
                    layout.spans_mut(f);
                }
            }
            StatementKind::RunService {
                endpoint,
                args,
                for_connection,
                as_account,
                into,
            } => {
                endpoint.spans_mut(f);
                args.spans_mut(f);
                for_connection.spans_mut(f);
                as_account.spans_mut(f);
                into.spans_mut(f);
            }
            StatementKind::Sleep { duration } => duration.spans_mut(f),
            StatementKind::Log { message } => message.spans_mut(f),
            StatementKind::Throw { code, message } => {
                code.spans_mut(f);
                message.spans_mut(f);
            }
            StatementKind::Try { body, catches } => {
                body.spans_mut(f);
                for Catch { filter, body, span } in catches {
                    match filter {
                        CatchFilter::Any => {}
                        CatchFilter::WebRequest { statuses } => {
                            for StatusCode { value: _, span } in statuses {
                                f(span);
                            }
                        }
                        CatchFilter::Code(code) => code.spans_mut(f),
                    }
                    body.spans_mut(f);
                    f(span);
                }
            }
            StatementKind::Foreach {
                item,
                iterable,
                body,
            } => {
                item.spans_mut(f);
                iterable.spans_mut(f);
                body.spans_mut(f);
            }
            StatementKind::While {
                condition,
                max,
                body,
            } => {
                condition.spans_mut(f);
                max.spans_mut(f);
                body.spans_mut(f);
            }
            StatementKind::Break => {}
            StatementKind::TokenGrant(grant) => {
                let TokenGrant {
                    grant: _,
                    client,
                    steps,
                } = &mut **grant;
                client.spans_mut(f);
                steps.spans_mut(f);
            }
        }
        f(span);
    }
}

impl Spans for WebRequest {
    fn spans_mut(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let WebRequest {
            method,
            url,
            query,
            headers,
            body,
            auth,
            timeout,
            retry,
            redirects,
            cross_origin,
            result_mapping,
            token_request: _,
            span,
            layout,
        } = self;
        method.spans_mut(f);
        url.spans_mut(f);
        query.spans_mut(f);
        headers.spans_mut(f);
        match body {
            Some(RequestBody::Form { fields, span } | RequestBody::Json { fields, span }) => {
                fields.spans_mut(f);
                f(span);
            }
            Some(RequestBody::Raw { value, span }) => {
                value.spans_mut(f);
                f(span);
            }
            None => {}
        }
        match auth {
            Some(Auth::Basic {
                user,
                password,
                span,
            }) => {
                user.spans_mut(f);
                password.spans_mut(f);
                f(span);
            }
            Some(Auth::Bearer { token, span }) => {
                token.spans_mut(f);
                f(span);
            }
            Some(Auth::Client { client, span }) => {
                client.spans_mut(f);
                f(span);
            }
            Some(Auth::PrivateKeyJwt(jwt)) => jwt.spans_mut(f),
            Some(Auth::JwtBearer(jwt)) => jwt.spans_mut(f),
            None => {}
        }
        timeout.spans_mut(f);
        if let Some(Retry {
            attempts,
            max_time,
            span,
            layout,
        }) = retry
        {
            attempts.spans_mut(f);
            max_time.spans_mut(f);
            f(span);
            layout.spans_mut(f);
        }
        redirects.spans_mut(f);
        cross_origin.spans_mut(f);
        for Mapping {
            target,
            source,
            span,
        } in result_mapping
        {
            target.spans_mut(f);
            match source {
                MappingSource::JsonPath { path: _, span }
                | MappingSource::Status { span }
                | MappingSource::Body { span } => f(span),
                MappingSource::Header { name, span } => {
                    name.spans_mut(f);
                    f(span);
                }
            }
            f(span);
        }
        f(span);
        layout.spans_mut(f);
    }
}

impl Spans for Field {
    fn spans_mut(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let Field { name, value, span } = self;
        name.spans_mut(f);
        value.spans_mut(f);
        f(span);
    }
}

impl Spans for Integer {
    fn spans_mut(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let Integer { value: _, span } = self;
        f(span);
    }
}

impl Spans for DurationLit {
    fn spans_mut(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let DurationLit {
            text: _,
            value: _,
            span,
        } = self;
        f(span);
    }
}

impl Spans for ScheduleDecl {
    fn spans_mut(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let ScheduleDecl {
            name,
            endpoint,
            service_account,
            every,
            cron,
            time_zone,
            before_expiry,
            disabled: _,
            description,
            on_failure,
            on_recovery,
            params,
            for_each_connection,
            concurrency,
            span,
            layout,
        } = self;
        name.spans_mut(f);
        endpoint.spans_mut(f);
        service_account.spans_mut(f);
        every.spans_mut(f);
        cron.spans_mut(f);
        time_zone.spans_mut(f);
        if let Some(BeforeExpiry { secret, lead, span }) = before_expiry {
            secret.spans_mut(f);
            lead.spans_mut(f);
            f(span);
        }
        description.spans_mut(f);
        on_failure.spans_mut(f);
        on_recovery.spans_mut(f);
        params.spans_mut(f);
        for_each_connection.spans_mut(f);
        concurrency.spans_mut(f);
        f(span);
        layout.spans_mut(f);
    }
}

impl Spans for Expr {
    fn spans_mut(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let Expr { kind, span } = self;
        match kind {
            ExprKind::String { parts } => {
                for part in parts {
                    match part {
                        StringPart::Text { value: _ } => {}
                        StringPart::Interpolation { expr } => expr.spans_mut(f),
                    }
                }
            }
            ExprKind::Number { value: _ }
            | ExprKind::Duration { millis: _ }
            | ExprKind::Bool { value: _ }
            | ExprKind::Null => {}
            ExprKind::Variable { name }
            | ExprKind::Secret { name }
            | ExprKind::Param { name }
            | ExprKind::Error { field: name }
            | ExprKind::Run { field: name } => name.spans_mut(f),
            ExprKind::Connection { field } => match field {
                ConnectionField::Id => {}
                ConnectionField::Tag(name) => name.spans_mut(f),
            },
            ExprKind::Call { function, args } => {
                function.spans_mut(f);
                args.spans_mut(f);
            }
            ExprKind::Not { operand } => operand.spans_mut(f),
            ExprKind::Binary { op: _, lhs, rhs } => {
                lhs.spans_mut(f);
                rhs.spans_mut(f);
            }
        }
        f(span);
    }
}
