"""Mothership commands into ROS: topics, services and actions, with results back to the C2.

Each mapped command type (config `commands.<type>.*`) becomes one of:
- topic: publish a message of a named type, fields filled from `params`;
- service: call a service with a timeout; the response is the result (`success: false`
  fails the command with the response's message);
- action: send a goal; acceptance and result have timeouts; feedback becomes
  `command_progress`; the result (status + fields) completes or fails the command. A `cancel`
  command naming a `command_id` cancels that goal.
Unmapped types, when allowed, are published as JSON on `~/commands` (std_msgs/String).
`firmware_update`, mapped to a service or an action, is the install hook instead: the alien client
checks, downloads and verifies the file, then the request or goal is filled from the update
(alien_ros/firmware_install.py).

Threads: handlers run on the alien client's asyncio loop and must not touch rclpy objects
that the executor is using; they hand the work to the executor thread through a guard
condition, and the executor thread hands results back with `call_soon_threadsafe`.
Params are checked against the ROS type before the command is accepted, so a bad field is a
`command_rejected` (`bad_params`) naming its path and expected type.
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from action_msgs.msg import GoalStatus
from rclpy.action import ActionClient
from rclpy.action.client import ClientGoalHandle
from rclpy.client import Client
from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.task import Future
from std_msgs.msg import String

from alien.commands import CommandContext
from alien.commands.envelope import Command
from alien.firmware import FIRMWARE_COMMAND
from alien.threaded import ThreadedClient
from alien_ros.conversions import message_to_dict
from alien_ros.firmware_install import FirmwareInstall
from alien_ros.message_fill import fill_message
from alien_ros.message_types import resolve_action_type, resolve_message_type, resolve_service_type
from alien_ros.parameters import CommandMapping

_STATUS_NAMES = {
    value: name.removeprefix("STATUS_")
    for name, value in vars(GoalStatus).items()
    if name.startswith("STATUS_") and isinstance(value, int)
}
CANCEL = "cancel"
_ROS_THREAD_TIMEOUT_S = 10.0  # the executor thread normally answers within milliseconds


class CommandFailed(Exception):
    """The ROS side ran the command and it did not succeed; the message says how."""


@dataclass
class _Job:
    """One unit of ROS work, run on the executor thread."""

    run: Callable[[], object]  # what it returns is ignored


@dataclass(frozen=True)
class TopicRoute:
    """A command type published on a topic (`commands.<type>.kind: topic`)."""

    mapping: CommandMapping
    publisher: Publisher


@dataclass(frozen=True)
class ServiceRoute:
    """A command type that calls a service (`kind: service`)."""

    mapping: CommandMapping
    client: Client


@dataclass(frozen=True)
class ActionRoute:
    """A command type that sends an action goal (`kind: action`)."""

    mapping: CommandMapping
    client: ActionClient


Route: TypeAlias = TopicRoute | ServiceRoute | ActionRoute
# what the alien client runs for a command of a routed type (alien.commands.CommandHandler)
_Handler: TypeAlias = Callable[[dict[str, Any], CommandContext], Awaitable[dict[str, Any]]]


class CommandRouter:
    def __init__(
        self, node: Node, mappings: Sequence[CommandMapping], alien: ThreadedClient, *, allow_unmapped: bool
    ) -> None:
        self.node = node
        self.alien = alien
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._wake = node.create_guard_condition(self._run_jobs)
        self._goals: dict[str, ClientGoalHandle] = {}  # command_id -> its goal, for `cancel`
        self._routes: dict[str, Route] = {}
        for mapping in mappings:  # resolve everything now: a missing type fails at startup
            self._routes[mapping.name] = self._route(mapping)
        if any(m.kind == "action" for m in mappings):
            alien.register_command_handler(CANCEL, self._cancel, prepare=_cancel_target)
        if allow_unmapped:
            self._unmapped = node.create_publisher(String, "~/commands", 10)
            alien.set_unhandled_command_handler(self._publish_unmapped)

    # --- setup ---
    def _route(self, mapping: CommandMapping) -> Route:
        if mapping.name == FIRMWARE_COMMAND:
            return self._firmware_route(mapping)
        if mapping.kind == "topic":
            msg_type = resolve_message_type(mapping.type_name)
            topic = TopicRoute(mapping, self.node.create_publisher(msg_type, mapping.target, 10))
            self.alien.register_command_handler(mapping.name, self._topic_handler(topic), prepare=_filler(msg_type))
            return topic
        if mapping.kind == "service":
            srv_type = resolve_service_type(mapping.type_name)
            service = ServiceRoute(mapping, self.node.create_client(srv_type, mapping.target))
            self.alien.register_command_handler(
                mapping.name, self._service_handler(service), prepare=_filler(srv_type.Request)
            )
            return service
        action_type = resolve_action_type(mapping.type_name)
        action = ActionRoute(mapping, ActionClient(self.node, action_type, mapping.target))
        self.alien.register_command_handler(
            mapping.name, self._action_handler(action), prepare=_filler(action_type.Goal)
        )
        return action

    def _firmware_route(self, mapping: CommandMapping) -> Route:
        """The install hook (docs/bridge.md#firmware-updates): the library verifies, the service or action installs."""
        max_size = self.alien.client.config.firmware_max_bytes
        if mapping.kind == "service":
            srv_type = resolve_service_type(mapping.type_name)
            service = ServiceRoute(mapping, self.node.create_client(srv_type, mapping.target))

            async def call(request: Any, progress: Any, command_id: str) -> dict[str, Any]:
                return await self.call_service(service, request)

            self.alien.on_firmware(FirmwareInstall(srv_type.Request, mapping.fields, call, max_size=max_size))
            return service
        action_type = resolve_action_type(mapping.type_name)
        action = ActionRoute(mapping, ActionClient(self.node, action_type, mapping.target))

        async def send(goal: Any, progress: Any, command_id: str) -> dict[str, Any]:
            return await self.run_action(action, goal, progress, command_id)

        self.alien.on_firmware(FirmwareInstall(action_type.Goal, mapping.fields, send, max_size=max_size))
        return action

    def destroy(self) -> None:
        # Node.destroy_node frees publishers and service clients, not action clients
        for route in self._routes.values():
            if isinstance(route, ActionRoute):
                route.client.destroy()

    # --- hand-offs between the two threads ---
    def _on_ros_thread(self, work: Callable[[], object]) -> None:
        self._jobs.put(_Job(work))
        self._wake.trigger()

    def _run_jobs(self) -> None:
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            try:
                job.run()
            except Exception:  # noqa: BLE001 - an exception here would end executor.spin()
                self.node.get_logger().error(f"command job failed:\n{traceback.format_exc()}")

    def _settle_from(self, future: asyncio.Future[Any], ros_future: Future) -> None:
        """From the ROS thread: pass a finished rclpy future's outcome on."""
        try:
            value = ros_future.result()
        except Exception as exc:  # noqa: BLE001 - becomes the command's failure
            self._settle(future, error=CommandFailed(f"{type(exc).__name__}: {exc}"))
            return
        if value is None:  # rclpy gives None for a cancelled or failed request
            self._settle(future, error=CommandFailed("the request ended without an answer"))
            return
        self._settle(future, value)

    def _settle(self, future: asyncio.Future[Any], value: Any = None, error: BaseException | None = None) -> None:
        """From the ROS thread: complete an asyncio future on the client's loop."""

        def settle() -> None:
            if future.done():
                return  # timed out or cancelled meanwhile
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(value)

        self.alien.loop.call_soon_threadsafe(settle)

    # --- topic ---
    def _topic_handler(self, route: TopicRoute) -> _Handler:
        publisher = route.publisher

        async def handle(command: dict[str, Any], context: CommandContext) -> dict[str, Any]:
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

            def publish() -> None:
                publisher.publish(context.prepared)
                self._settle(done)

            self._on_ros_thread(publish)
            await asyncio.wait_for(done, _ROS_THREAD_TIMEOUT_S)
            return {"published": publisher.topic_name}

        return handle

    # --- service ---
    def _service_handler(self, route: ServiceRoute) -> _Handler:
        async def handle(command: dict[str, Any], context: CommandContext) -> dict[str, Any]:
            return await self.call_service(route, context.prepared)

        return handle

    async def call_service(self, route: ServiceRoute, request: Any) -> dict[str, Any]:
        """Call the route's service with `request` (on the client's loop); its response, or CommandFailed."""
        mapping, client = route.mapping, route.client
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        pending: list[Future] = []

        def call() -> None:
            if not client.service_is_ready():
                self._settle(answer, error=CommandFailed(f"service {client.srv_name} is not available"))
                return
            ros_future = client.call_async(request)
            pending.append(ros_future)
            ros_future.add_done_callback(lambda f: self._settle_from(answer, f))

        self._on_ros_thread(call)
        try:
            response = await asyncio.wait_for(answer, mapping.timeout_s)
        except asyncio.TimeoutError:

            def forget() -> None:
                for ros_future in pending:
                    client.remove_pending_request(ros_future)

            self._on_ros_thread(forget)
            raise CommandFailed(f"service {client.srv_name} did not answer within {mapping.timeout_s:g}s") from None
        result = message_to_dict(response)
        if result.get("success") is False:
            raise CommandFailed(f"service {client.srv_name} answered success=false: {result.get('message', '')}")
        return result

    # --- action ---
    def _action_handler(self, route: ActionRoute) -> _Handler:
        async def handle(command: dict[str, Any], context: CommandContext) -> dict[str, Any]:
            return await self.run_action(route, context.prepared, context.progress, context.command_id)

        return handle

    async def run_action(
        self, route: ActionRoute, goal: Any, progress: Callable[[dict[str, Any]], None], command_id: str
    ) -> dict[str, Any]:
        """Send `goal` (on the client's loop): feedback to `progress`, a `cancel` of `command_id` cancels it.

        Its status and result, or CommandFailed (rejected, not accepted or no result in time, aborted, cancelled).
        """
        mapping, action_client, name = route.mapping, route.client, route.mapping.target
        loop = asyncio.get_running_loop()
        accepted: asyncio.Future[Any] = loop.create_future()
        finished: asyncio.Future[Any] = loop.create_future()
        # Set (from the loop) when this handler stops waiting; read on the ROS thread, so a
        # goal accepted after the acceptance timeout is cancelled instead of left running.
        gave_up = threading.Event()

        def on_feedback(feedback: Any) -> None:  # ROS thread
            loop.call_soon_threadsafe(progress, message_to_dict(feedback.feedback))

        def on_goal(goal_future: Future) -> None:  # ROS thread
            goal_handle = goal_future.result()
            if goal_handle is None or not goal_handle.accepted:
                self._settle(accepted, error=CommandFailed(f"action server {name} rejected the goal"))
                return
            if gave_up.is_set():
                goal_handle.cancel_goal_async()
                return
            self._goals[command_id] = goal_handle
            self._settle(accepted, goal_handle)
            goal_handle.get_result_async().add_done_callback(lambda f: self._settle_from(finished, f))

        def send() -> None:
            if not action_client.server_is_ready():
                self._settle(accepted, error=CommandFailed(f"action server {name} is not available"))
                return
            action_client.send_goal_async(goal, feedback_callback=on_feedback).add_done_callback(on_goal)

        def give_up() -> None:  # ROS thread: cancel the goal if it runs, or when it is accepted
            gave_up.set()
            goal_handle = self._goals.pop(command_id, None)
            if goal_handle is not None:
                goal_handle.cancel_goal_async()

        self._on_ros_thread(send)
        try:
            await asyncio.wait_for(accepted, mapping.accept_timeout_s)
        except asyncio.TimeoutError:
            gave_up.set()
            raise CommandFailed(
                f"action server {name} did not accept the goal within {mapping.accept_timeout_s:g}s"
            ) from None
        except asyncio.CancelledError:
            gave_up.set()
            raise
        try:
            outcome = await asyncio.wait_for(finished, mapping.timeout_s)
        except asyncio.TimeoutError:
            self._on_ros_thread(give_up)
            raise CommandFailed(f"action {name} gave no result within {mapping.timeout_s:g}s; goal cancelled") from None
        except asyncio.CancelledError:  # the client is shutting down: stop the robot's goal too
            self._on_ros_thread(give_up)
            raise
        self._on_ros_thread(lambda: self._goals.pop(command_id, None))
        status = _STATUS_NAMES.get(outcome.status, str(outcome.status))
        result = {"status": status, "result": message_to_dict(outcome.result)}
        if outcome.status != GoalStatus.STATUS_SUCCEEDED:
            raise CommandFailed(f"action {name} ended {status}: {json.dumps(result['result'])[:500]}")
        return result

    async def _cancel(self, command: dict[str, Any], context: CommandContext) -> dict[str, Any]:
        target = context.prepared
        goal_handle = self._goals.get(target)
        if goal_handle is None:
            raise CommandFailed(f"no running action goal for command {target}")
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._on_ros_thread(
            lambda: goal_handle.cancel_goal_async().add_done_callback(lambda f: self._settle_from(done, f))
        )
        response = await asyncio.wait_for(done, _ROS_THREAD_TIMEOUT_S)
        if not response.goals_canceling:
            raise CommandFailed(f"the action server refused to cancel command {target}")
        return {"cancelling": target}

    # --- anything else ---
    async def _publish_unmapped(self, command: dict[str, Any]) -> dict[str, Any]:
        message = String(data=json.dumps(command, separators=(",", ":")))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def publish() -> None:
            self._unmapped.publish(message)
            self._settle(done)

        self._on_ros_thread(publish)
        await asyncio.wait_for(done, _ROS_THREAD_TIMEOUT_S)
        return {"delivered": self._unmapped.topic_name}


def _filler(msg_type: type) -> Callable[[Command], Any]:
    """Checks and builds the ROS message from params before the command is accepted."""

    def prepare(command: Command) -> Any:
        return fill_message(msg_type, command.params)

    return prepare


def _cancel_target(command: Command) -> str:
    target = command.params.get("command_id")
    if not isinstance(target, str) or not target:
        raise ValueError("params.command_id: expected the command_id of the goal to cancel (a string)")
    return target
