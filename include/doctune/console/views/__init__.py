"""The console's pages and actions, as Starlette endpoints that read what they share from ``app.state.context``
(``console.context``); ``console.app`` routes to them.

- ``pages``: rendering a page, the library it shows, a doctune error as a message on the page, redirects back.
- ``actions``: operators only, and every action (or attempt) recorded in the registry under the user's name.
- ``login``: the health check, login and logout.
- ``chat``: the playground, streaming through the gateway.
- ``datasets``: dataset versions, a version's pairs, the diff of two versions.
- ``training``: runs, the start form, start, stop, resume, a run's curves.
- ``adapters``: the leaderboard, promote and rollback.
- ``models``: the vLLM server, load and unload.
"""
