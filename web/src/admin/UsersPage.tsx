// People and their roles (admins): find, add, change a role, disable or enable.
import { useId, useState } from "react";
import { useMutation, useQuery } from "@connectrpc/connect-query";
import { useQueryClient } from "@tanstack/react-query";
import { AuthService, UserService, type User } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { humanRoles, Role, roleLabel } from "../api/access";
import { useSessionState } from "../api/context";
import { describeError } from "../api/errors";
import { EmptyState, ErrorNotice, SkeletonRows } from "../ui/feedback";
import { FormField } from "../ui/form";
import { formatDateTime } from "../ui/format";
import { Icon } from "../ui/icons";
import { Pager, usePageTokens } from "../ui/pager";
import { useDebounced } from "../ui/use-debounced";

const pageSize = 25;

export function UsersPage() {
  const id = useId();
  const [query, setQuery] = useState("");
  const [role, setRole] = useState<Role>(Role.UNSPECIFIED);
  const [adding, setAdding] = useState(false);
  const search = useDebounced(query.trim());
  const pages = usePageTokens(search, role);
  const users = useQuery(UserService.method.listUsers, { query: search, role, pageSize, pageToken: pages.token });
  const list = users.data?.users ?? [];

  return (
    <div className="page">
      <header className="page-header">
        <div>
          <h1>Users and roles</h1>
          <p className="page-lede">Viewers watch the fleet, operators also act on kiosks, admins also manage people, enrollment and the audit log.</p>
        </div>
        {!adding && (
          <button type="button" className="button button-primary" onClick={() => setAdding(true)}>
            Add a user
          </button>
        )}
      </header>
      {adding && <AddUserForm onDone={() => setAdding(false)} />}
      <section className="card" aria-labelledby={`${id}-heading`}>
        <h2 id={`${id}-heading`} className="card-title">
          People
        </h2>
        <form className="filters" role="search" onSubmit={(e) => e.preventDefault()}>
          <div className="field field-grow">
            <label htmlFor={`${id}-q`}>Search</label>
            <div className="input-icon">
              <Icon name="search" />
              <input id={`${id}-q`} type="search" placeholder="Email or name" value={query} onChange={(e) => setQuery(e.target.value)} />
            </div>
          </div>
          <div className="field">
            <label htmlFor={`${id}-role`}>Role</label>
            <select id={`${id}-role`} value={role} onChange={(e) => setRole(Number(e.target.value) as Role)}>
              <option value={Role.UNSPECIFIED}>Any role</option>
              {humanRoles.map((r) => (
                <option key={r} value={r}>
                  {roleLabel[r]}
                </option>
              ))}
            </select>
          </div>
        </form>
        {users.error && <ErrorNotice error={users.error} onRetry={() => void users.refetch()} compact />}
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Person</th>
                <th scope="col">Role</th>
                <th scope="col">Signs in with</th>
                <th scope="col">Status</th>
                <th scope="col">Added</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {users.isPending && <SkeletonRows rows={5} columns={6} />}
              {list.map((u) => (
                <UserRow key={u.userId} user={u} />
              ))}
            </tbody>
          </table>
          {!users.isPending && list.length === 0 && !users.error && (
            <EmptyState icon="users" title="Nobody matches">
              <p>Try another search or role.</p>
            </EmptyState>
          )}
        </div>
        <Pager pages={pages} nextToken={users.data?.nextPageToken} shown={list.length} pageSize={pageSize} noun="people" />
      </section>
    </div>
  );
}

function UserRow({ user }: { user: User }) {
  const queryClient = useQueryClient();
  const session = useSessionState();
  const isSelf = session.status === "signed-in" && session.user.userId === user.userId;
  const update = useMutation(UserService.method.updateUser, { onSuccess: () => queryClient.invalidateQueries() });
  const label = user.displayName || user.email;
  const providers = useQuery(AuthService.method.listSsoProviders, {});
  const provider = providers.data?.providers.find((p) => p.providerId === user.ssoProviderId)?.displayName ?? user.ssoProviderId;
  return (
    <tr data-testid="user-row">
      <td>
        <div>{user.displayName || <span className="muted">No name</span>}</div>
        <div className="muted">{user.email}</div>
      </td>
      <td>
        <label className="visually-hidden" htmlFor={`role-${user.userId}`}>
          Role of {label}
        </label>
        <select
          id={`role-${user.userId}`}
          value={user.role}
          disabled={update.isPending || isSelf}
          title={isSelf ? "You cannot change your own role" : undefined}
          onChange={(e) => {
            const role = Number(e.target.value) as Role;
            if (window.confirm(`Make ${label} ${roleLabel[role].toLowerCase()}? Their current sessions end and they sign in again.`)) update.mutate({ userId: user.userId, role });
          }}
        >
          {humanRoles.map((r) => (
            <option key={r} value={r}>
              {roleLabel[r]}
            </option>
          ))}
        </select>
        {update.error && <p className="field-error">{describeError(update.error).title}</p>}
      </td>
      <td data-testid="user-origin">
        {user.ssoProviderId ? (
          <span title={`Created at their first single sign-on; their role follows their groups at ${provider} (subject ${user.ssoSubject})`}>{provider}</span>
        ) : (
          <span className="muted">Password</span>
        )}
      </td>
      <td>{user.disabled ? <span className="badge badge-off">Disabled</span> : <span className="badge badge-ok">Active</span>}</td>
      <td>{formatDateTime(user.createTime)}</td>
      <td className="actions">
        {!isSelf && (
          <button
            type="button"
            className="button button-small"
            disabled={update.isPending}
            onClick={() => {
              if (user.disabled || window.confirm(`Disable ${label}? Their sessions end at once.`)) update.mutate({ userId: user.userId, disabled: !user.disabled });
            }}
          >
            {user.disabled ? "Enable" : "Disable"}
          </button>
        )}
      </td>
    </tr>
  );
}

function AddUserForm({ onDone }: { onDone: () => void }) {
  const id = useId();
  const queryClient = useQueryClient();
  const [email, setEmail] = useState("");
  const [displayName, setDisplayName] = useState("");
  const [role, setRole] = useState<Role>(Role.VIEWER);
  const [password, setPassword] = useState("");
  const create = useMutation(UserService.method.createUser, {
    onSuccess: async () => {
      await queryClient.invalidateQueries();
      onDone();
    },
  });
  const fields = create.error ? describeError(create.error).fields : {};
  return (
    <section className="card" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`} className="card-title">
        Add a user
      </h2>
      <form
        className="form form-columns"
        onSubmit={(e) => {
          e.preventDefault();
          create.mutate({ email: email.trim(), displayName: displayName.trim(), role, password });
        }}
      >
        <FormField id={`${id}-email`} label="Email" error={fields["email"]}>
          <input id={`${id}-email`} type="email" required value={email} onChange={(e) => setEmail(e.target.value)} autoComplete="off" />
        </FormField>
        <FormField id={`${id}-name`} label="Name" error={fields["display_name"]}>
          <input id={`${id}-name`} value={displayName} onChange={(e) => setDisplayName(e.target.value)} />
        </FormField>
        <FormField id={`${id}-role`} label="Role" error={fields["role"]}>
          <select id={`${id}-role`} value={role} onChange={(e) => setRole(Number(e.target.value) as Role)}>
            {humanRoles.map((r) => (
              <option key={r} value={r}>
                {roleLabel[r]}
              </option>
            ))}
          </select>
        </FormField>
        <FormField id={`${id}-password`} label="First password" hint="At least 12 characters; they can be given a new one later" error={fields["password"]}>
          <input id={`${id}-password`} type="password" required minLength={12} value={password} onChange={(e) => setPassword(e.target.value)} autoComplete="new-password" />
        </FormField>
        {create.error && <ErrorNotice error={create.error} compact />}
        <div className="form-actions">
          <button type="submit" className="button button-primary" disabled={create.isPending}>
            {create.isPending ? "Adding…" : "Add user"}
          </button>
          <button type="button" className="button button-quiet" onClick={onDone}>
            Cancel
          </button>
        </div>
      </form>
    </section>
  );
}
